import type { Shape } from "../backend.js";

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Strides for reading a tensor of `shape` as if broadcast to `outShape` (right-aligned):
 * broadcast axes get stride 0.
 */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const offset = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) {
    out[i + offset] = shape[i] === 1 ? 0 : own[i];
  }
  return out;
}

/**
 * For each flat output index of `outShape`, the flat index into each input read with the
 * given strides. Cheap enough for the reference backend; faster backends special-case.
 */
export function broadcastIndex(outShape: Shape, strides: readonly number[][]): Int32Array[] {
  const size = sizeOf(outShape);
  const n = outShape.length;
  const result = strides.map(() => new Int32Array(size));
  const counter = new Array<number>(n).fill(0);
  const offsets = strides.map(() => 0);
  for (let i = 0; i < size; i++) {
    for (let t = 0; t < strides.length; t++) result[t][i] = offsets[t];
    // Increment the multi-index, updating each input's offset incrementally.
    for (let d = n - 1; d >= 0; d--) {
      counter[d]++;
      for (let t = 0; t < strides.length; t++) offsets[t] += strides[t][d];
      if (counter[d] < outShape[d]) break;
      for (let t = 0; t < strides.length; t++) offsets[t] -= strides[t][d] * outShape[d];
      counter[d] = 0;
    }
  }
  return result;
}
