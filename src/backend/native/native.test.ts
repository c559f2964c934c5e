import { describe, expect, it } from "vitest";
import { randn } from "../../tensor/creation.js";
import { Generator } from "../../tensor/random.js";
import { Tensor } from "../../tensor/tensor.js";
import type { FloatDType } from "../dtype.js";
import { referenceBackend } from "../reference/index.js";
import { nativeBackend } from "./index.js";

// CI installs oneDNN and checks that the addon loads, so these run there; without the
// addon (a machine lacking libdnnl-dev) there is nothing to compare.
describe.runIf(nativeBackend !== null)("native backend against the reference backend", () => {
  const g = new Generator(5);
  const dim = () => 1 + (g.nextUint32() % 37);
  const cases = Array.from({ length: 24 }, (_, i) => {
    const [m, k, n] = [dim(), dim(), dim()];
    const batchA = i % 3 === 0 ? [2, 1] : i % 3 === 1 ? [3] : [];
    const batchB = i % 3 === 0 ? [1, 3] : i % 3 === 1 ? [] : [];
    return { m, k, n, transA: i % 2 === 1, transB: i % 4 >= 2, batchA, batchB };
  });

  it.each(["float32", "bfloat16", "float16"] as FloatDType[])(
    "matmul in %s on random odd shapes, transposes and broadcast batches",
    (dtype) => {
      for (const [i, c] of cases.entries()) {
        const aShape = [...c.batchA, ...(c.transA ? [c.k, c.m] : [c.m, c.k])];
        const bShape = [...c.batchB, ...(c.transB ? [c.n, c.k] : [c.k, c.n])];
        const a = randn(aShape, { seed: 2 * i, dtype });
        const b = randn(bShape, { seed: 2 * i + 1, dtype });
        const batch =
          c.batchA.length >= c.batchB.length
            ? c.batchA.map((d, j) => Math.max(d, c.batchB[j] ?? 1))
            : c.batchB;
        const want = new Tensor(
          referenceBackend.matmul(
            a.data,
            a.shape,
            b.data,
            b.shape,
            c.transA,
            c.transB,
            batch,
            dtype,
          ),
          [...batch, c.m, c.n],
          dtype,
        ).toFloat32Array();
        const got = new Tensor(
          nativeBackend!.matmul(a.data, a.shape, b.data, b.shape, c.transA, c.transB, batch, dtype),
          [...batch, c.m, c.n],
          dtype,
        ).toFloat32Array();
        // float32: different summation orders, ~K ulps of the row's magnitude; 16-bit: at most one ulp of the rounded output.
        const tol = dtype === "float32" ? 1e-5 : dtype === "bfloat16" ? 2 ** -7 : 2 ** -10;
        for (let j = 0; j < want.length; j++) {
          expect(Math.abs(got[j] - want[j]), `case ${i} element ${j}`).toBeLessThanOrEqual(
            tol * Math.max(1, Math.abs(want[j]) * Math.sqrt(c.k)),
          );
        }
      }
    },
  );

  it("leaves other dtypes to the reference kernels", () => {
    const a = randn([3, 4], { seed: 1, dtype: "float64" });
    const b = randn([4, 2], { seed: 2, dtype: "float64" });
    expect(
      Array.from(
        nativeBackend!.matmul(
          a.data,
          a.shape,
          b.data,
          b.shape,
          false,
          false,
          [],
          "float64",
        ) as Float64Array,
      ),
    ).toEqual(
      Array.from(
        referenceBackend.matmul(
          a.data,
          a.shape,
          b.data,
          b.shape,
          false,
          false,
          [],
          "float64",
        ) as Float64Array,
      ),
    );
  });
});
