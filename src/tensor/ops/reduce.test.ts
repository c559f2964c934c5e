import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { at, indices, maxAbsDiff, values } from "../../../test/helpers/naive.js";
import { ShapeError } from "../../errors.js";
import { ones, randn } from "../creation.js";
import { Tensor } from "../tensor.js";
import { max, mean, min, sum, sumTo } from "./reduce.js";

function naiveReduce(x: Tensor, axes: number[], f: (vals: number[]) => number): number[] {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out: number[] = [];
  for (const idx of indices(outShape)) {
    const vals: number[] = [];
    for (const sub of indices(x.shape)) {
      if (sub.every((v, i) => axes.includes(i) || v === idx[i])) vals.push(at(x, sub));
    }
    out.push(f(vals));
  }
  return out;
}

const OPS = [
  ["sum", sum, (v: number[]) => v.reduce((a, b) => a + b, 0)],
  ["mean", mean, (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length],
  ["max", max, (v: number[]) => Math.max(...v)],
  ["min", min, (v: number[]) => Math.min(...v)],
] as const;

describe.each(OPS)("%s", (_name, op, ref) => {
  const axesCases: (number | number[] | undefined)[] = [undefined, 0, -1, [0, 2], [1]];
  it.each(axesCases)("over axes %j matches a naive loop, with and without keepdim", (axes) => {
    const x = param([2, 3, 4], 1);
    const list =
      axes === undefined
        ? [0, 1, 2]
        : (Array.isArray(axes) ? axes : [axes]).map((a) => (a < 0 ? a + 3 : a));
    const kept = op(x, axes, true);
    expect(kept.shape).toEqual(x.shape.map((d, i) => (list.includes(i) ? 1 : d)));
    expect(op(x, axes).shape).toEqual(x.shape.filter((_, i) => !list.includes(i)));
    expect(maxAbsDiff(values(kept), naiveReduce(x, list, ref))).toBeLessThan(1e-12);
  });

  it.each(axesCases)("over axes %j has finite-difference gradients", (axes) => {
    gradcheck((t) => op(t, axes), [param([2, 3, 4], 2)]);
  });
});

describe("reductions: dtypes and edge cases", () => {
  it("accumulates 16-bit inputs in float32: 4096 bfloat16 ones sum to exactly 4096", () => {
    // Summing in bfloat16 would stall at 256 (256 + 1 rounds back to 256).
    const s = sum(ones([4096], { dtype: "bfloat16" }));
    expect(s.dtype).toBe("bfloat16");
    expect(s.item()).toBe(4096);
    expect(mean(ones([4096], { dtype: "float16" })).item()).toBe(1);
  });

  it("counts booleans into int64 and averages integers in float32", () => {
    const b = Tensor.from([true, false, true]);
    expect(sum(b).dtype).toBe("int64");
    expect(sum(b).item()).toBe(2);
    expect(sum(Tensor.from([1, 2, 3], [3], "int32")).dtype).toBe("int32");
    expect(mean(Tensor.from([1, 2])).dtype).toBe("float32");
    expect(mean(Tensor.from([1, 2])).item()).toBe(1.5);
  });

  it("shares the max gradient between ties", () => {
    const x = Tensor.from([1, 3, 3], [3], "float64").requiresGrad_();
    max(x).backward();
    expect(values(x.grad!)).toEqual([0, 0.5, 0.5]);
  });

  it("propagates NaN through max and min", () => {
    expect(max(Tensor.from([1, Number.NaN, 2])).item()).toBeNaN();
    expect(min(Tensor.from([Number.NaN, 1, 2])).item()).toBeNaN();
  });

  it("sumTo reduces broadcast axes and rejects shapes that do not broadcast", () => {
    const g = param([2, 3, 4], 3);
    expect(sumTo(g, [3, 1]).shape).toEqual([3, 1]);
    expect(values(sumTo(g, [3, 1]))).toEqual(
      naiveReduce(g, [0, 2], (v) => v.reduce((a, b) => a + b, 0)),
    );
    expect(() => sumTo(g, [5, 1])).toThrow(ShapeError);
  });

  it("names the op and the axis when an axis is out of range", () => {
    expect(() => sum(randn([2, 3]), 2)).toThrow(
      "sum: axis 2 is out of range for a tensor with 2 dimensions (expected an integer in [-2, 1])",
    );
    expect(() => mean(randn([2, 3]), [0, -2])).toThrow(/name the same axis twice/);
    expect(() => max(randn([0, 3]), 0)).toThrow(/cannot reduce an empty axis/);
  });
});
