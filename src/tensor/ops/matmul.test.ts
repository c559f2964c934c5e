import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { at, indices, maxAbsDiff, values } from "../../../test/helpers/naive.js";
import { DTypeError, ShapeError } from "../../errors.js";
import { randn } from "../creation.js";
import { autocast } from "../state.js";
import type { Tensor } from "../tensor.js";
import { linear, matmul } from "./matmul.js";
import { sum } from "./reduce.js";

function naiveMatmul(a: Tensor, b: Tensor, outShape: number[]): number[] {
  const K = a.shape[a.ndim - 1];
  const out: number[] = [];
  for (const idx of indices(outShape)) {
    const i = idx[idx.length - 2];
    const j = idx[idx.length - 1];
    const batch = idx.slice(0, -2);
    let s = 0;
    for (let k = 0; k < K; k++) s += at(a, [...batch, i, k]) * at(b, [...batch, k, j]);
    out.push(s);
  }
  return out;
}

describe("matmul", () => {
  const cases: [number[], number[], number[]][] = [
    [
      [3, 4],
      [4, 5],
      [3, 5],
    ],
    [
      [2, 3, 4],
      [4, 2],
      [2, 3, 2],
    ],
    [
      [2, 1, 3, 4],
      [3, 4, 2],
      [2, 3, 3, 2],
    ],
    [
      [1, 5, 7],
      [2, 7, 1],
      [2, 5, 1],
    ],
  ];

  it.each(cases)("%j x %j matches a naive triple loop", (sa, sb, so) => {
    const a = param(sa, 1);
    const b = param(sb, 2);
    const y = matmul(a, b);
    expect(y.shape).toEqual(so);
    expect(maxAbsDiff(values(y), naiveMatmul(a, b, so))).toBeLessThan(1e-12);
  });

  it.each(cases)("%j x %j has finite-difference gradients (broadcast batch dims)", (sa, sb) => {
    gradcheck(matmul, [param(sa, 3), param(sb, 4)]);
  });

  it("treats 1-D operands as vectors like torch.matmul", () => {
    const v = param([4], 5);
    const m = param([4, 3], 6);
    expect(matmul(v, m).shape).toEqual([3]);
    expect(matmul(param([2, 3, 4], 7), v).shape).toEqual([2, 3]);
    expect(matmul(v, param([4], 8)).shape).toEqual([]);
    gradcheck(matmul, [v, m]);
    gradcheck(matmul, [param([2, 3, 4], 9), v]);
  });

  it("computes 16-bit products with float32 accumulation, rounded once", () => {
    const a = randn([16, 64], { seed: 10 });
    const b = randn([64, 8], { seed: 11 });
    for (const [dtype, rel] of [
      ["bfloat16", 2 ** -8],
      ["float16", 2 ** -11],
    ] as const) {
      const a16 = a.to(dtype);
      const b16 = b.to(dtype);
      const exact = naiveMatmul(a16.to("float64"), b16.to("float64"), [16, 8]);
      const got = matmul(a16, b16);
      expect(got.dtype).toBe(dtype);
      const g = values(got);
      // Only the final rounding separates us from the exact product of the rounded inputs.
      exact.forEach((e, i) =>
        expect(Math.abs(g[i] - e)).toBeLessThanOrEqual(rel * Math.abs(e) + 1e-6),
      );
    }
  });

  it("rejects mismatched inner sizes, 0-d operands and integer dtypes", () => {
    expect(() => matmul(randn([2, 3]), randn([4, 5]))).toThrow(ShapeError);
    expect(() => matmul(randn([2, 3]), randn([4, 5]))).toThrow(
      "matmul: shapes [2, 3] and [4, 5] cannot be multiplied: inner sizes 3 and 4 differ",
    );
    expect(() => matmul(randn([]), randn([2]))).toThrow(/at least one dimension/);
    expect(() => matmul(randn([2, 2]).to("int32"), randn([2, 2]))).toThrow(DTypeError);
  });
});

describe("mixed dtypes and autocast", () => {
  const x = randn([3, 4], { seed: 1 });
  const w16 = randn([5, 4], { seed: 2, dtype: "bfloat16" });

  it("is an error outside autocast, naming both dtypes and the module", () => {
    expect(() => matmul(x, w16.transpose())).toThrow(
      "matmul: expected all operands to have the same dtype, got float32 and bfloat16 (cast one of them, or run inside autocast)",
    );
    expect(() => linear(x, w16, null, { name: "model.layers.0.self_attn.q_proj" })).toThrow(
      /linear: expected all operands in model\.layers\.0\.self_attn\.q_proj to have the same dtype, got float32 and bfloat16/,
    );
  });

  it("runs in the autocast dtype, with gradients in each input's own dtype", () => {
    const xs = x.detach().requiresGrad_();
    const w = w16.detach().requiresGrad_();
    const y = autocast("bfloat16", () => linear(xs, w));
    expect(y.dtype).toBe("bfloat16");
    sum(y.to("float32")).backward();
    expect(xs.grad!.dtype).toBe("float32");
    expect(w.grad!.dtype).toBe("bfloat16");
    // Same numbers as casting by hand.
    expect(values(y)).toEqual(values(linear(x.to("bfloat16"), w16)));
    expect(autocast("float16", () => matmul(x, x.transpose())).dtype).toBe("float16");
  });
});

describe("bfloat16 linear of a few rows (decoding)", () => {
  // Rounded once to bfloat16 (half an ulp, 2^-8 relative) after float32 sums of k terms.
  it.each([
    [1, 2048, 300],
    [3, 70, 33],
    [8, 576, 64],
    [9, 96, 40],
    // No rows at all (an empty batch) still gives an empty [0, n] result.
    [0, 64, 16],
  ])("m=%i, k=%i, n=%i is within one rounding of the float64 product", (m, k, n) => {
    const w = randn([n, k], { seed: 1 }).mul(0.05).to("bfloat16");
    const x = randn([m, k], { seed: 2 }).to("bfloat16");
    const y = linear(x, w);
    expect(y.dtype).toBe("bfloat16");
    expect(y.shape).toEqual([m, n]);
    const got = y.to("float64").toFlatNumbers();
    const exact = linear(x.to("float64"), w.to("float64")).toFlatNumbers();
    const bound = linear(x.to("float64").abs(), w.to("float64").abs()).toFlatNumbers();
    for (let i = 0; i < exact.length; i++) {
      const allowed = 2 ** -8 * Math.abs(exact[i]) + k * 2 ** -24 * bound[i];
      expect(Math.abs(got[i] - exact[i]), `element ${i}`).toBeLessThanOrEqual(allowed);
    }
  });
});

describe("linear", () => {
  function naiveLinear(x: Tensor, w: Tensor, b: Tensor | null): number[] {
    const [outF, inF] = w.shape;
    const rows = x.size / inF;
    const xv = values(x);
    const wv = values(w);
    const bv = b === null ? null : values(b);
    const out: number[] = [];
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        let s = bv === null ? 0 : bv[o];
        for (let k = 0; k < inF; k++) s += xv[r * inF + k] * wv[o * inF + k];
        out.push(s);
      }
    }
    return out;
  }

  it("computes x Wᵀ + b on 3-D input", () => {
    const x = param([2, 3, 4], 1);
    const w = param([5, 4], 2);
    const b = param([5], 3);
    const y = linear(x, w, b);
    expect(y.shape).toEqual([2, 3, 5]);
    expect(maxAbsDiff(values(y), naiveLinear(x, w, b))).toBeLessThan(1e-12);
    expect(maxAbsDiff(values(linear(x, w)), naiveLinear(x, w, null))).toBeLessThan(1e-12);
  });

  it("has finite-difference gradients for input, weight and bias", () => {
    gradcheck((x, w, b) => linear(x, w, b), [param([2, 3, 4], 4), param([5, 4], 5), param([5], 6)]);
    gradcheck((x, w) => linear(x, w), [param([3, 4], 7), param([2, 4], 8)]);
  });

  it("computes no weight gradient for a frozen weight", () => {
    const x = param([3, 4], 9);
    const w = param([2, 4], 10).detach();
    const y = linear(x, w);
    const needs = y.gradFn!.needs;
    expect(needs).toEqual([true, false]);
    sum(y).backward();
    expect(w.grad).toBeNull();
  });

  it("names shapes in its errors", () => {
    expect(() => linear(randn([2, 5]), randn([3, 4]))).toThrow(
      "linear: input [2, 5] has 5 features but weight [3, 4] expects 4",
    );
    expect(() => linear(randn([2, 4]), randn([3, 4]), randn([2]))).toThrow(
      /bias of shape \[2\] does not match weight \[3, 4\]: expected \[3\]/,
    );
    expect(() => linear(randn([2, 4]), randn([4]))).toThrow(/expected a 2-D weight/);
  });
});
