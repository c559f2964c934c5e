import { describe, expect, it } from "vitest";
import { DTypeError, ShapeError, ValueError } from "../errors.js";
import {
  arange,
  full,
  ones,
  onesLike,
  rand,
  randn,
  uniform,
  zeros,
  zerosLike,
} from "./creation.js";
import { Tensor } from "./tensor.js";

describe("Tensor.from", () => {
  it("infers shape and dtype from nested arrays like torch.tensor", () => {
    const ints = Tensor.from([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(ints.shape).toEqual([2, 3]);
    expect(ints.dtype).toBe("int64");
    expect(Tensor.from([1.5, 2]).dtype).toBe("float32");
    expect(Tensor.from([true, false]).dtype).toBe("bool");
    expect(Tensor.from(3.5).shape).toEqual([]);
    expect(Tensor.from(3.5).item()).toBe(3.5);
  });

  it("takes typed arrays with an explicit shape and converts to a requested dtype", () => {
    const t = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(t.dtype).toBe("float32");
    expect(t.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const bf = Tensor.from(new Float32Array([1 / 3]), [1], "bfloat16");
    expect(bf.data).toBeInstanceOf(Uint16Array);
    expect(bf.data.byteLength).toBe(2);
    expect(bf.toFloat32Array()[0]).toBe(0.333984375);
    expect(Tensor.from(new Uint16Array([0x3c00]), [1], "float16").item()).toBe(1);
    expect(Tensor.from(new BigInt64Array([5n, -7n])).toArray()).toEqual([5, -7]);
  });

  it("copies its input", () => {
    const src = new Float32Array([1, 2]);
    const t = Tensor.from(src);
    src[0] = 9;
    expect(t.toArray()).toEqual([1, 2]);
  });

  it("reports bad input precisely", () => {
    expect(() => Tensor.from([1, 2, 3], [2, 2])).toThrow(
      /shape \[2, 2\] needs 4 elements but 3 were given/,
    );
    expect(() => Tensor.from([[1, 2], [3]])).toThrow(ShapeError);
    expect(() => Tensor.from([[1, 2], [3]])).toThrow(
      /ragged nested array: expected 2 elements at values\[1\]/,
    );
    expect(() => Tensor.from(["a"] as unknown as number[])).toThrow(
      /expected a number or boolean at values\[0\], found string a/,
    );
    expect(() => Tensor.from(new Uint16Array(2))).toThrow(DTypeError);
    expect(() => Tensor.from([1.5], [1], "int32")).toThrow(/needs integer values, found 1.5/);
    expect(() => Tensor.from([1], [1], "float8" as "float32")).toThrow(ValueError);
    expect(() => new Tensor(new Float32Array(3), [2, 2], "float32")).toThrow(
      /needs 4 elements but the storage has 3/,
    );
    expect(() => new Tensor(new Float32Array(4), [2, 2], "bfloat16")).toThrow(
      /cannot hold dtype bfloat16/,
    );
  });
});

describe("read-out", () => {
  it("widens float32, float16 and bfloat16 exactly in toFloat32Array", () => {
    const v = [0.1, -2.5, 65504, 1e-6];
    for (const dtype of ["float32", "float16", "bfloat16"] as const) {
      const t = Tensor.from(v, [4], dtype);
      const back = Tensor.from(t.toFloat32Array(), [4], dtype);
      expect(Array.from(back.data as ArrayLike<number>)).toEqual(
        Array.from(t.data as ArrayLike<number>),
      );
    }
  });

  it("item needs exactly one element", () => {
    expect(() => zeros([2]).item()).toThrow(/expected a tensor with one element, got shape \[2\]/);
    expect(Tensor.from([true]).item()).toBe(true);
  });

  it("to() converts with rounding and describes itself", () => {
    const t = Tensor.from([1, 2], [2], "float32");
    expect(t.to("float16").dtype).toBe("float16");
    expect(String(randn([2, 3]))).toBe("Tensor(shape=[2, 3], dtype=float32)");
  });
});

describe("creation", () => {
  it("zeros, ones, full and their *Like forms", () => {
    expect(zeros([2], { dtype: "int32" }).toArray()).toEqual([0, 0]);
    expect(ones([2, 1], { dtype: "bfloat16" }).toArray()).toEqual([[1], [1]]);
    expect(full([3], 0.1, { dtype: "float64" }).toArray()).toEqual([0.1, 0.1, 0.1]);
    const like = onesLike(zeros([2], { dtype: "float16" }));
    expect(like.dtype).toBe("float16");
    expect(zerosLike(like, { dtype: "int64" }).dtype).toBe("int64");
    expect(ones([1], { requiresGrad: true }).requiresGrad).toBe(true);
    expect(() => zeros([-1])).toThrow(ShapeError);
  });

  it("arange counts like torch.arange", () => {
    expect(arange(4).toArray()).toEqual([0, 1, 2, 3]);
    expect(arange(4).dtype).toBe("int64");
    expect(arange(1, 2, 0.25).toArray()).toEqual([1, 1.25, 1.5, 1.75]);
    expect(arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    expect(arange(0, 3, 1, { dtype: "float32" }).dtype).toBe("float32");
    expect(() => arange(0, 1, 0)).toThrow(/non-zero step/);
  });

  it("random creation is seeded and reproducible, in every float dtype", () => {
    for (const dtype of ["float32", "float64", "float16", "bfloat16"] as const) {
      expect(rand([5], { seed: 1, dtype }).toArray()).toEqual(
        rand([5], { seed: 1, dtype }).toArray(),
      );
      const u = uniform([1000], -2, 3, { seed: 2, dtype }).toFloat32Array();
      expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
      expect(Math.max(...u)).toBeLessThanOrEqual(3);
    }
    const n = randn([20000], { seed: 3, mean: 1, std: 2 }).toFloat32Array();
    const mean = n.reduce((a, b) => a + b, 0) / n.length;
    const std = Math.sqrt(n.reduce((a, b) => a + (b - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean - 1)).toBeLessThan(0.05);
    expect(Math.abs(std - 2)).toBeLessThan(0.05);
  });
});
