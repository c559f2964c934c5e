import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { maxAbsDiff, values } from "../../../test/helpers/naive.js";
import { ShapeError } from "../../errors.js";
import { randn } from "../creation.js";
import { Tensor } from "../tensor.js";
import { layerNorm, rmsNorm } from "./norm.js";

function naiveNorm(
  kind: "layer" | "rms",
  x: Tensor,
  w: Tensor | null,
  b: Tensor | null,
  eps: number,
): number[] {
  const n = x.shape[x.ndim - 1];
  const xv = values(x);
  const wv = w && values(w);
  const bv = b && values(b);
  const out: number[] = [];
  for (let r = 0; r < xv.length / n; r++) {
    const row = xv.slice(r * n, r * n + n);
    const mu = kind === "layer" ? row.reduce((a, c) => a + c, 0) / n : 0;
    const varr = row.reduce((a, c) => a + (c - mu) ** 2, 0) / n;
    row.forEach((v, j) =>
      out.push(((v - mu) / Math.sqrt(varr + eps)) * (wv ? wv[j] : 1) + (bv ? bv[j] : 0)),
    );
  }
  return out;
}

describe("layerNorm", () => {
  it("matches the textbook formula with and without affine parameters", () => {
    const x = param([2, 3, 5], 1, 3);
    const w = param([5], 2);
    const b = param([5], 3);
    expect(
      maxAbsDiff(values(layerNorm(x, w, b, 1e-5)), naiveNorm("layer", x, w, b, 1e-5)),
    ).toBeLessThan(1e-12);
    expect(maxAbsDiff(values(layerNorm(x)), naiveNorm("layer", x, null, null, 1e-5))).toBeLessThan(
      1e-12,
    );
  });

  it("has finite-difference gradients for x, weight and bias", () => {
    gradcheck((x, w, b) => layerNorm(x, w, b), [param([3, 6], 4), param([6], 5), param([6], 6)]);
    gradcheck((x) => layerNorm(x), [param([2, 2, 4], 7)]);
    gradcheck((x, w) => layerNorm(x, w), [param([1, 5], 8), param([5], 9)]);
    gradcheck((x, b) => layerNorm(x, null, b), [param([4, 1, 3], 10), param([3], 11)]);
  });

  it("keeps 16-bit dtypes within rounding of float32", () => {
    const x = randn([4, 32], { seed: 12 });
    const w = randn([32], { seed: 13 });
    const ref = values(layerNorm(x, w));
    const got = layerNorm(x.to("bfloat16"), w.to("bfloat16"));
    expect(got.dtype).toBe("bfloat16");
    expect(maxAbsDiff(values(got), ref)).toBeLessThan(0.05);
    expect(layerNorm(x.to("bfloat16"), w).dtype).toBe("float32"); // promotes like PyTorch
  });

  it("checks parameter shapes", () => {
    expect(() => layerNorm(randn([2, 4]), randn([3]))).toThrow(ShapeError);
    expect(() => layerNorm(randn([2, 4]), randn([3]))).toThrow(
      "layerNorm: weight of shape [3] does not match input [2, 4]: expected [4]",
    );
  });
});

describe("rmsNorm", () => {
  it("matches x / sqrt(mean(x²) + eps) · w", () => {
    const x = param([2, 3, 5], 1, 2);
    const w = param([5], 2);
    expect(
      maxAbsDiff(values(rmsNorm(x, w, 1e-6)), naiveNorm("rms", x, w, null, 1e-6)),
    ).toBeLessThan(1e-12);
    expect(maxAbsDiff(values(rmsNorm(x)), naiveNorm("rms", x, null, null, 1e-6))).toBeLessThan(
      1e-12,
    );
  });

  it("has finite-difference gradients (fused and mixed-dtype paths)", () => {
    gradcheck((x, w) => rmsNorm(x, w), [param([3, 6], 3), param([6], 4)]);
    gradcheck((x) => rmsNorm(x), [param([2, 1, 4], 5)]);
    // A float32 weight on a float64 input takes the unfused path.
    const w32 = randn([4], { seed: 6 });
    gradcheck((x) => rmsNorm(x, w32), [param([3, 4], 7)]);
  });

  it("rounds the normalised value to the input dtype before the weight, as transformers does", () => {
    const x = randn([3, 16], { seed: 8, dtype: "bfloat16" });
    const w = randn([16], { seed: 9, dtype: "bfloat16" });
    const xv = values(x);
    const wv = values(w);
    const expected: number[] = [];
    for (let r = 0; r < 3; r++) {
      const row = xv.slice(r * 16, r * 16 + 16);
      const inv = 1 / Math.sqrt(row.reduce((a, c) => a + c * c, 0) / 16 + 1e-6);
      // hidden.to(float32) * rsqrt(var + eps) -> .to(bfloat16) -> weight * that -> bfloat16
      const normed = values(
        Tensor.from(
          row.map((v) => Math.fround(v * inv)),
          [16],
          "bfloat16",
        ),
      );
      expected.push(
        ...values(
          Tensor.from(
            normed.map((v, j) => Math.fround(v * wv[j])),
            [16],
            "bfloat16",
          ),
        ),
      );
    }
    const got = rmsNorm(x, w);
    expect(got.dtype).toBe("bfloat16");
    expect(values(got)).toEqual(expected);
    expect(rmsNorm(x, w.to("float32")).dtype).toBe("float32");
  });
});
