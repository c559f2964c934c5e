import type { Shape } from "../backend.js";
import type { DType, Storage } from "../dtype.js";
import { allocate } from "../dtype.js";
import { sizeOf, stridesOf } from "./strides.js";

// Layout kernels copy elements without converting them, so every dtype (int64 as
// BigInt64Array included) keeps its exact bits.
type Elements = { [i: number]: number | bigint; length: number };

/**
 * Visits every element of an `outShape` grid and calls `visit(outIndex, srcIndex)`,
 * where the source index advances by `srcStrides` per output axis from `srcStart`.
 */
function walk(
  outShape: Shape,
  srcStrides: readonly number[],
  srcStart: number,
  visit: (o: number, s: number) => void,
): void {
  const n = outShape.length;
  const size = sizeOf(outShape);
  const counter = new Array<number>(n).fill(0);
  let s = srcStart;
  for (let o = 0; o < size; o++) {
    visit(o, s);
    for (let d = n - 1; d >= 0; d--) {
      counter[d]++;
      s += srcStrides[d];
      if (counter[d] < outShape[d]) break;
      s -= srcStrides[d] * outShape[d];
      counter[d] = 0;
    }
  }
}

export function permute(x: Storage, shape: Shape, perm: readonly number[], dtype: DType): Storage {
  const strides = stridesOf(shape);
  const outShape = perm.map((p) => shape[p]);
  const out = allocate(dtype, x.length) as Elements;
  const src = x as Elements;
  walk(
    outShape,
    perm.map((p) => strides[p]),
    0,
    (o, s) => {
      out[o] = src[s];
    },
  );
  return out as unknown as Storage;
}

/** The flat start and per-axis strides that a slice reads with. */
export function sliceGeometry(shape: Shape, starts: readonly number[], steps: readonly number[]) {
  const strides = stridesOf(shape);
  const start = starts.reduce((acc, st, d) => acc + st * strides[d], 0);
  return { start, strides: strides.map((s, d) => s * steps[d]) };
}

export function slice(
  x: Storage,
  shape: Shape,
  starts: readonly number[],
  steps: readonly number[],
  outShape: Shape,
  dtype: DType,
): Storage {
  const { start, strides } = sliceGeometry(shape, starts, steps);
  const out = allocate(dtype, sizeOf(outShape)) as Elements;
  const src = x as Elements;
  walk(outShape, strides, start, (o, s) => {
    out[o] = src[s];
  });
  return out as unknown as Storage;
}

export function sliceScatter(
  src: Storage,
  shape: Shape,
  starts: readonly number[],
  steps: readonly number[],
  srcShape: Shape,
  dtype: DType,
): Storage {
  const { start, strides } = sliceGeometry(shape, starts, steps);
  const out = allocate(dtype, sizeOf(shape)) as Elements;
  const from = src as Elements;
  walk(srcShape, strides, start, (o, s) => {
    out[s] = from[o];
  });
  return out as unknown as Storage;
}

export function concat(
  parts: readonly Storage[],
  shapes: readonly Shape[],
  axis: number,
  dtype: DType,
): Storage {
  const outer = sizeOf(shapes[0].slice(0, axis));
  const inner = sizeOf(shapes[0].slice(axis + 1));
  const widths = shapes.map((s) => s[axis] * inner);
  const rowWidth = widths.reduce((a, b) => a + b, 0);
  const out = allocate(dtype, outer * rowWidth);
  for (let o = 0; o < outer; o++) {
    let at = o * rowWidth;
    parts.forEach((p, i) => {
      const w = widths[i];
      // Same storage type on both sides, so a block copy keeps bits.
      (out as Uint8Array).set((p as Uint8Array).subarray(o * w, o * w + w), at);
      at += w;
    });
  }
  return out;
}
