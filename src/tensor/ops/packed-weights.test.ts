import { afterEach, describe, expect, it } from "vitest";
import type { FloatDType } from "../../backend/dtype.js";
import { nativeBackend } from "../../backend/native/index.js";
import { getBackend, setBackend } from "../../backend/registry.js";
import { randn } from "../creation.js";
import { autocast } from "../state.js";
import { overwrite } from "../storage-version.js";
import type { Tensor } from "../tensor.js";
import { linear } from "./matmul.js";
import { setWeightPacking } from "./packed-weights.js";

const maxDiff = (a: Tensor, b: Tensor) => {
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};

/** Runs fn on the native backend, whichever backend the suite runs on. */
function onNative<T>(fn: () => T): T {
  const previous = getBackend().name;
  setBackend("native");
  try {
    return fn();
  } finally {
    setBackend(previous);
  }
}

describe.runIf(nativeBackend !== null)("linear on packed frozen weights (native)", () => {
  afterEach(() => setWeightPacking(false));

  /** y and dx of linear with packing off and on, on the native backend. */
  function both(x: Tensor, w: Tensor, dtype: FloatDType) {
    return onNative(() => {
      const run = (on: boolean) => {
        setWeightPacking(on);
        const xi = x.detach();
        xi.requiresGrad = true;
        const y = linear(xi, w);
        y.sum().backward();
        return { y, dx: xi.grad! };
      };
      return { plain: run(false), packed: run(true), dtype };
    });
  }

  it.each([
    ["float32", 1e-5],
    ["bfloat16", 2 ** -6],
  ] as [FloatDType, number][])(
    "%s: the same outputs and input gradients as the plain product, for 1 to 300 rows",
    (dtype, tol) => {
      const w = randn([70, 45], { seed: 1, dtype });
      for (const rows of [1, 3, 64, 300]) {
        const x = randn([rows, 45], { seed: rows, dtype });
        const { plain, packed } = both(x, w, dtype);
        expect(packed.y.dtype).toBe(dtype);
        expect(maxDiff(packed.y, plain.y), `${rows} rows`).toBeLessThanOrEqual(tol * 4);
        expect(maxDiff(packed.dx, plain.dx), `${rows} rows dx`).toBe(0); // the same plain product
      }
    },
  );

  it("repacks after an in-place write, a new storage, or under another autocast dtype", () => {
    onNative(() => {
      setWeightPacking(true);
      const w = randn([16, 8], { seed: 2 });
      const x = randn([4, 8], { seed: 3 });
      // The plain product on the same values: a view of w that requires grad is never packed
      // (and leaves the packed copies alone).
      const reference = (weight: Tensor) => {
        const view = weight.detach();
        view.requiresGrad = true;
        return linear(x, view).detach();
      };
      expect(maxDiff(linear(x, w), reference(w))).toBeLessThan(1e-5);
      w.data = randn([16, 8], { seed: 5 }).data;
      expect(maxDiff(linear(x, w), reference(w))).toBeLessThan(1e-5);
      overwrite(w.data, randn([16, 8], { seed: 4 }).data);
      expect(maxDiff(linear(x, w), reference(w))).toBeLessThan(1e-5);
      const y16 = autocast("bfloat16", () => linear(x, w));
      expect(y16.dtype).toBe("bfloat16");
      expect(
        maxDiff(
          y16,
          autocast("bfloat16", () => reference(w)),
        ),
      ).toBeLessThan(2 ** -5);
    });
  });

  it("leaves trained weights to the plain product, so they still get their gradient", () => {
    onNative(() => {
      setWeightPacking(true);
      const w = randn([6, 5], { seed: 6 });
      w.requiresGrad = true;
      linear(randn([3, 5], { seed: 7 }), w)
        .sum()
        .backward();
      expect(w.grad).not.toBeNull();
    });
  });
});
