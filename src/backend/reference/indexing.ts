import type { Shape } from "../backend.js";
import type { DType, FloatDType, Storage } from "../dtype.js";
import { allocate } from "../dtype.js";
import { floatsFor, readFloats, writeFloats } from "./float.js";
import { sizeOf, stridesOf } from "./strides.js";

type Elements = { [i: number]: number | bigint; length: number };

/** For each index position, the flat offset in x with the `axis` coordinate left at 0. */
function baseOffsets(indexShape: Shape, shape: Shape, axis: number): Int32Array {
  const strides = stridesOf(shape);
  const n = indexShape.length;
  const size = sizeOf(indexShape);
  const out = new Int32Array(size);
  const counter = new Array<number>(n).fill(0);
  let off = 0;
  for (let i = 0; i < size; i++) {
    out[i] = off;
    for (let d = n - 1; d >= 0; d--) {
      counter[d]++;
      if (d !== axis) off += strides[d];
      if (counter[d] < indexShape[d]) break;
      if (d !== axis) off -= strides[d] * indexShape[d];
      counter[d] = 0;
    }
  }
  return out;
}

export function gather(
  x: Storage,
  shape: Shape,
  axis: number,
  index: Int32Array,
  indexShape: Shape,
  dtype: DType,
): Storage {
  const base = baseOffsets(indexShape, shape, axis);
  const stride = stridesOf(shape)[axis];
  const out = allocate(dtype, index.length) as Elements;
  const src = x as Elements;
  for (let i = 0; i < index.length; i++) out[i] = src[base[i] + index[i] * stride];
  return out as unknown as Storage;
}

export function scatterAdd(
  src: Storage,
  indexShape: Shape,
  axis: number,
  index: Int32Array,
  shape: Shape,
  dtype: FloatDType,
): Storage {
  const base = baseOffsets(indexShape, shape, axis);
  const stride = stridesOf(shape)[axis];
  const values = readFloats(src, dtype);
  const acc = floatsFor(dtype, sizeOf(shape));
  for (let i = 0; i < index.length; i++) acc[base[i] + index[i] * stride] += values[i];
  return writeFloats(acc, dtype);
}

export function embedding(table: Storage, dim: number, ids: Int32Array, dtype: DType): Storage {
  const out = allocate(dtype, ids.length * dim);
  for (let i = 0; i < ids.length; i++) {
    (out as Uint8Array).set(
      (table as Uint8Array).subarray(ids[i] * dim, ids[i] * dim + dim),
      i * dim,
    );
  }
  return out;
}

export function embeddingGrad(
  dy: Storage,
  dim: number,
  ids: Int32Array,
  rows: number,
  dtype: FloatDType,
): Storage {
  const g = readFloats(dy, dtype);
  const acc = floatsFor(dtype, rows * dim);
  for (let i = 0; i < ids.length; i++) {
    const to = ids[i] * dim;
    const from = i * dim;
    for (let j = 0; j < dim; j++) acc[to + j] += g[from + j];
  }
  return writeFloats(acc, dtype);
}
