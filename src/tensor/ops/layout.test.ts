import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { at, indices, values } from "../../../test/helpers/naive.js";
import { DTypeError, IndexError, ShapeError, ValueError } from "../../errors.js";
import { arange, randn } from "../creation.js";
import { Tensor } from "../tensor.js";
import { dropout } from "./dropout.js";
import { embedding, gather } from "./indexing.js";
import { concat, permute, slice, stack, transpose } from "./layout.js";
import { sum } from "./reduce.js";
import { broadcastTo, flatten, reshape, squeeze, unsqueeze } from "./view.js";

describe("permute and transpose", () => {
  it("move every element to its permuted position", () => {
    const x = param([2, 3, 4], 1);
    const y = permute(x, [2, 0, 1]);
    expect(y.shape).toEqual([4, 2, 3]);
    for (const [i, j, k] of indices(y.shape)) expect(at(y, [i, j, k])).toBe(at(x, [j, k, i]));
    expect(transpose(x).shape).toEqual([2, 4, 3]);
    expect(transpose(x, 0, -1).shape).toEqual([4, 3, 2]);
    gradcheck((t) => permute(t, [2, 0, 1]), [x]);
    gradcheck((t) => transpose(t, 0, 2), [x]);
  });

  it("keep int64 and bool values exactly", () => {
    const big = Tensor.from(new BigInt64Array([2n ** 53n + 1n, -5n, 7n, 9n]), [2, 2]);
    expect(Array.from(permute(big, [1, 0]).data as BigInt64Array)).toEqual([
      2n ** 53n + 1n,
      7n,
      -5n,
      9n,
    ]);
    expect(transpose(Tensor.from([[true, false]])).toArray()).toEqual([[true], [false]]);
  });

  it("reject what is not a permutation", () => {
    expect(() => permute(randn([2, 3]), [0, 0])).toThrow(ShapeError);
    expect(() => permute(randn([2, 3]), [0])).toThrow(
      "permute: [0] is not a permutation of the 2 axes of a tensor of shape [2, 3]",
    );
  });
});

describe("slice", () => {
  const cases: [number, number, number | undefined, number][] = [
    [1, 1, 4, 1],
    [1, -3, undefined, 1],
    [1, 0, 5, 2],
    [0, -10, 10, 1],
    [2, 1, -1, 2],
    [1, 4, 2, 1],
  ];
  it.each(cases)(
    "axis %i, start %i, end %s, step %i behaves like Python slicing",
    (axis, start, end, step) => {
      const x = param([2, 5, 3], 2);
      const y = slice(x, axis, start, end, step);
      const n = x.shape[axis];
      const picked: number[] = [];
      const lo = Math.min(Math.max(start < 0 ? start + n : start, 0), n);
      const hi = end === undefined ? n : Math.min(Math.max(end < 0 ? end + n : end, 0), n);
      for (let k = lo; k < hi; k += step) picked.push(k);
      expect(y.shape).toEqual(x.shape.map((d, i) => (i === axis ? picked.length : d)));
      for (const idx of indices(y.shape)) {
        const src = [...idx];
        src[axis] = picked[idx[axis]];
        expect(at(y, idx)).toBe(at(x, src));
      }
      if (picked.length > 0) gradcheck((t) => slice(t, axis, start, end, step), [x]);
    },
  );

  it("keeps int64 values and rejects bad steps", () => {
    expect(slice(arange(10), 0, 2, 9, 3).toArray()).toEqual([2, 5, 8]);
    expect(() => slice(randn([3]), 0, 0, 2, 0)).toThrow(ValueError);
  });
});

describe("concat and stack", () => {
  it("join along an axis with gradients to each part", () => {
    const a = param([2, 1, 3], 1);
    const b = param([2, 4, 3], 2);
    const c = param([2, 2, 3], 3).detach();
    const y = concat([a, b, c], 1);
    expect(y.shape).toEqual([2, 7, 3]);
    for (const [i, j, k] of indices(y.shape)) {
      const expected =
        j < 1 ? at(a, [i, j, k]) : j < 5 ? at(b, [i, j - 1, k]) : at(c, [i, j - 5, k]);
      expect(at(y, [i, j, k])).toBe(expected);
    }
    gradcheck((p, q) => concat([p, q, c], 1), [a, b]);
    expect(concat([a.to("bfloat16"), c.to("float16")], 1).dtype).toBe("float32");
  });

  it("stack inserts a new axis", () => {
    const a = param([2, 3], 4);
    const b = param([2, 3], 5);
    expect(stack([a, b], 0).shape).toEqual([2, 2, 3]);
    expect(stack([a, b], -1).shape).toEqual([2, 3, 2]);
    expect(at(stack([a, b], 2), [1, 2, 1])).toBe(at(b, [1, 2]));
    gradcheck((p, q) => stack([p, q], 1), [a, b]);
  });

  it("keeps int64 and bool exactly and explains mismatches", () => {
    expect(concat([Tensor.from([1, 2]), Tensor.from([3])]).toArray()).toEqual([1, 2, 3]);
    expect(concat([Tensor.from([true]), Tensor.from([false])]).toArray()).toEqual([true, false]);
    expect(() => concat([randn([2, 3]), randn([2, 4])], 0)).toThrow(
      "concat: tensor 1 has shape [2, 4], which does not match tensor 0's shape [2, 3] outside axis 0",
    );
    expect(() => concat([])).toThrow(ValueError);
    expect(() => stack([randn([2]), randn([3])])).toThrow(/stack needs equal shapes/);
  });
});

describe("gather and embedding", () => {
  it("gather follows torch.gather and accumulates repeated indices in backward", () => {
    const x = param([3, 4], 1);
    const index = Tensor.from([
      [0, 0, 3],
      [1, 2, 1],
    ]);
    const y = gather(x, 1, index);
    for (const [i, j] of indices(y.shape))
      expect(at(y, [i, j])).toBe(at(x, [i, at(index, [i, j])]));
    gradcheck((t) => gather(t, 1, index), [x]);
    const idx0 = Tensor.from([[2, 0, 1, 2]]);
    expect(gather(x, 0, idx0).shape).toEqual([1, 4]);
    gradcheck((t) => gather(t, 0, idx0), [x]);
  });

  it("embedding picks rows, sums gradients of repeated ids", () => {
    const w = param([5, 3], 2);
    const ids = Tensor.from([
      [4, 0, 4],
      [1, 1, 2],
    ]);
    const y = embedding(ids, w);
    expect(y.shape).toEqual([2, 3, 3]);
    for (const [i, j, d] of indices(y.shape))
      expect(at(y, [i, j, d])).toBe(at(w, [at(ids, [i, j]), d]));
    gradcheck((t) => embedding(ids, t), [w]);
    expect(embedding(ids, w.detach().to("bfloat16")).dtype).toBe("bfloat16");
  });

  it("rejects out-of-range ids and bad index shapes", () => {
    expect(() => embedding(Tensor.from([0, 5]), randn([5, 2]))).toThrow(IndexError);
    expect(() => embedding(Tensor.from([0, 5]), randn([5, 2]))).toThrow(
      /id 5 at flat position 1 is out of range: expected 0 <= id < 5/,
    );
    expect(() => embedding(Tensor.from([-1]), randn([5, 2]))).toThrow(IndexError);
    expect(() => embedding(randn([2]), randn([5, 2]))).toThrow(DTypeError);
    expect(() => gather(randn([2, 3]), 1, Tensor.from([0, 1]))).toThrow(ShapeError);
    expect(() => gather(randn([2, 3]), 1, Tensor.from([[3]]))).toThrow(IndexError);
  });
});

describe("views", () => {
  it("reshape shares storage, infers -1 and carries gradients", () => {
    const x = param([2, 6], 1);
    const y = reshape(x, [3, -1]);
    expect(y.shape).toEqual([3, 4]);
    expect(y.data).toBe(x.data);
    gradcheck((t) => reshape(t, [4, 3]), [x]);
    expect(() => reshape(x, [5, -1])).toThrow(
      "reshape: cannot infer -1 in [5, -1] for 12 elements (shape [2, 6])",
    );
    expect(() => reshape(x, [5])).toThrow(
      /cannot reshape a tensor of shape \[2, 6\] \(12 elements\) to \[5\]/,
    );
  });

  it("flatten, squeeze and unsqueeze change only the shape", () => {
    const x = param([2, 1, 3, 1], 2);
    expect(flatten(x).shape).toEqual([6]);
    expect(flatten(x, 1, 2).shape).toEqual([2, 3, 1]);
    expect(squeeze(x).shape).toEqual([2, 3]);
    expect(squeeze(x, 1).shape).toEqual([2, 3, 1]);
    expect(squeeze(x, 0).shape).toEqual([2, 1, 3, 1]);
    expect(unsqueeze(x, -1).shape).toEqual([2, 1, 3, 1, 1]);
    gradcheck((t) => unsqueeze(squeeze(t), 0), [x]);
  });

  it("broadcastTo copies along new and size-1 axes, and sums back in backward", () => {
    const x = param([3, 1], 3);
    const y = broadcastTo(x, [2, 3, 4]);
    for (const [i, j, k] of indices(y.shape)) expect(at(y, [i, j, k])).toBe(at(x, [j, 0]));
    gradcheck((t) => broadcastTo(t, [2, 3, 4]), [x]);
    expect(() => broadcastTo(randn([3]), [2, 2])).toThrow(ShapeError);
  });
});

describe("dropout", () => {
  it("keeps a fraction 1-p, scales by 1/(1-p), and is reproducible from a seed", () => {
    const x = randn([100_000], { seed: 1, dtype: "float64" }).mul(0).add(1);
    const y = values(dropout(x, 0.3, { seed: 7 }));
    const kept = y.filter((v) => v !== 0);
    expect(Math.abs(kept.length / y.length - 0.7)).toBeLessThan(0.01);
    kept.forEach((v) => expect(v).toBeCloseTo(1 / 0.7, 12));
    expect(Math.abs(y.reduce((a, b) => a + b, 0) / y.length - 1)).toBeLessThan(0.02);
    expect(values(dropout(x, 0.3, { seed: 7 }))).toEqual(y);
    expect(values(dropout(x, 0.3, { seed: 8 }))).not.toEqual(y);
  });

  it("passes gradients through the same mask", () => {
    gradcheck((t) => dropout(t, 0.4, { seed: 3 }), [param([4, 5], 2)]);
    const x = param([10], 4);
    sum(dropout(x, 1)).backward();
    expect(values(x.grad!)).toEqual(new Array(10).fill(0));
  });

  it("is the identity when not training or p = 0, and checks p", () => {
    const x = randn([3]);
    expect(dropout(x, 0.5, { training: false })).toBe(x);
    expect(dropout(x, 0)).toBe(x);
    expect(() => dropout(x, 1.5)).toThrow("dropout: p must be in [0, 1], got 1.5");
  });
});
