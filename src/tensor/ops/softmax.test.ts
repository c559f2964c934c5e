import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { at, indices, maxAbsDiff, values } from "../../../test/helpers/naive.js";
import { DTypeError, IndexError, ShapeError, ValueError } from "../../errors.js";
import { randn } from "../creation.js";
import { autocast } from "../state.js";
import { Tensor } from "../tensor.js";
import { crossEntropy } from "./loss.js";
import { logSoftmax, softmax } from "./softmax.js";

function naiveSoftmax(x: Tensor, axis: number, log: boolean): number[] {
  const out: number[] = [];
  for (const idx of indices(x.shape)) {
    let z = 0;
    for (let k = 0; k < x.shape[axis]; k++) {
      const j = [...idx];
      j[axis] = k;
      z += Math.exp(at(x, j));
    }
    out.push(log ? at(x, idx) - Math.log(z) : Math.exp(at(x, idx)) / z);
  }
  return out;
}

describe.each([
  ["softmax", softmax, false],
  ["logSoftmax", logSoftmax, true],
] as const)("%s", (_name, op, log) => {
  it.each([0, 1, 2, -1])("matches the definition along axis %i", (axis) => {
    const x = param([2, 3, 4], 1, 2);
    const ax = axis < 0 ? axis + 3 : axis;
    expect(maxAbsDiff(values(op(x, axis)), naiveSoftmax(x, ax, log))).toBeLessThan(1e-12);
  });

  it.each([0, 1, -1])("has finite-difference gradients along axis %i", (axis) => {
    gradcheck((x) => op(x, axis), [param([3, 1, 4], 2)]);
  });

  it("is stable for large inputs and handles -Infinity", () => {
    const y = values(op(Tensor.from([1000, 1000, -Infinity], [3], "float32")));
    expect(y[0]).toBeCloseTo(log ? Math.log(0.5) : 0.5, 6);
    expect(y[2]).toBe(log ? -Infinity : 0);
  });

  it("accepts 16-bit inputs and rejects integers", () => {
    const x = randn([4, 8], { seed: 3 });
    expect(maxAbsDiff(values(op(x.to("bfloat16"))), values(op(x)))).toBeLessThan(log ? 0.05 : 0.01);
    expect(() => op(Tensor.from([1, 2]))).toThrow(DTypeError);
  });
});

describe("crossEntropy", () => {
  function naiveCE(logits: Tensor, target: number[], reduction: "mean" | "sum" | "none"): number[] {
    const C = logits.shape[logits.ndim - 1];
    const v = values(logits);
    const losses = target.map((t, r) => {
      if (t === -100) return 0;
      const row = v.slice(r * C, r * C + C);
      const lse = Math.log(row.reduce((a, c) => a + Math.exp(c), 0));
      return lse - row[t];
    });
    const s = losses.reduce((a, c) => a + c, 0);
    const counted = target.filter((t) => t !== -100).length;
    return reduction === "none" ? losses : reduction === "sum" ? [s] : [s / counted];
  }
  const target = [3, -100, 0, 4, 4, -100];

  it.each(["mean", "sum", "none"] as const)(
    "matches the definition with reduction %s, ignoring -100",
    (reduction) => {
      const logits = param([2, 3, 5], 1);
      const t = Tensor.from(target, [2, 3]);
      const y = crossEntropy(logits, t, { reduction });
      expect(y.shape).toEqual(reduction === "none" ? [2, 3] : []);
      expect(maxAbsDiff(values(y), naiveCE(logits, target, reduction))).toBeLessThan(1e-12);
      gradcheck((l) => crossEntropy(l, t, { reduction }), [logits]);
    },
  );

  it("follows PyTorch: all targets ignored gives NaN for mean", () => {
    expect(crossEntropy(randn([2, 3]), Tensor.from([-100, -100])).item()).toBeNaN();
    expect(
      crossEntropy(randn([2, 3]), Tensor.from([5, 0]), { ignoreIndex: 5 }).item(),
    ).toBeGreaterThan(0);
  });

  it("keeps a 16-bit loss in its dtype, and in float32 under autocast", () => {
    const logits = randn([4, 7], { seed: 2 });
    const t = Tensor.from([0, 1, 2, 6], [4], "int32");
    const ref = crossEntropy(logits, t).item() as number;
    const bf = crossEntropy(logits.to("bfloat16"), t);
    expect(bf.dtype).toBe("bfloat16");
    expect(Math.abs((bf.item() as number) - ref)).toBeLessThan(0.05);
    const l = logits.to("bfloat16").requiresGrad_();
    const auto = autocast("bfloat16", () => crossEntropy(l, t));
    expect(auto.dtype).toBe("float32");
    auto.backward();
    expect(l.grad!.dtype).toBe("bfloat16");
  });

  it("computes 16-bit logits in float32 with dtype: float32, exactly as a float32 copy would", () => {
    const logits = randn([5, 300], { seed: 3, dtype: "bfloat16" });
    const t = Tensor.from([0, 299, -100, 7, 150], [5], "int32");
    const direct = logits.detach().requiresGrad_();
    const loss = crossEntropy(direct, t, { dtype: "float32" });
    const copied = logits.detach().requiresGrad_();
    const ref = crossEntropy(copied.to("float32"), t);
    expect(loss.dtype).toBe("float32");
    expect(loss.item()).toBe(ref.item());
    loss.backward();
    ref.backward();
    expect(direct.grad!.dtype).toBe("bfloat16");
    expect(Array.from(direct.grad!.data as Uint16Array)).toEqual(
      Array.from(copied.grad!.data as Uint16Array),
    );
  });

  it("validates targets", () => {
    expect(() => crossEntropy(randn([2, 3]), Tensor.from([0, 3]))).toThrow(IndexError);
    expect(() => crossEntropy(randn([2, 3]), Tensor.from([0, 3]))).toThrow(
      /target 3 at position 1 is out of range for 3 classes/,
    );
    expect(() => crossEntropy(randn([2, 3]), Tensor.from([0, 1, 2]))).toThrow(ShapeError);
    expect(() => crossEntropy(randn([2, 3]), Tensor.from([0, 1, 2]))).toThrow(
      "crossEntropy: targets of shape [3] do not match logits of shape [2, 3]: expected [2]",
    );
    expect(() => crossEntropy(randn([2, 3]), randn([2]))).toThrow(DTypeError);
    expect(() =>
      crossEntropy(randn([2, 3]), Tensor.from([0, 1]), { reduction: "avg" as "mean" }),
    ).toThrow(ValueError);
  });
});
