import type { ReduceOp, Shape } from "../backend.js";
import type { DType, Storage } from "../dtype.js";
import { isFloat } from "../dtype.js";
import { floatsFor, readNumbers, writeFloats, writeNumbers } from "./float.js";
import { sizeOf, stridesOf } from "./strides.js";

export function reduce(
  op: ReduceOp,
  x: Storage,
  shape: Shape,
  axes: readonly number[],
  dtype: DType,
): Storage {
  const src = readNumbers(x, dtype);
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outSize = sizeOf(outShape);
  const acc = new Float64Array(outSize);
  const init = op === "max" ? -Infinity : op === "min" ? Infinity : 0;
  acc.fill(init);
  const outStrides = stridesOf(outShape).map((s, i) => (axes.includes(i) ? 0 : s));
  const n = shape.length;
  const counter = new Array<number>(n).fill(0);
  let o = 0;
  const size = src.length;
  for (let i = 0; i < size; i++) {
    const v = src[i];
    if (op === "max") {
      if (v > acc[o] || Number.isNaN(v)) acc[o] = v;
    } else if (op === "min") {
      if (v < acc[o] || Number.isNaN(v)) acc[o] = v;
    } else {
      acc[o] += v;
    }
    for (let d = n - 1; d >= 0; d--) {
      counter[d]++;
      o += outStrides[d];
      if (counter[d] < shape[d]) break;
      o -= outStrides[d] * shape[d];
      counter[d] = 0;
    }
  }
  if (op === "mean") {
    const count = outSize === 0 ? 0 : sizeOf(axes.map((a) => shape[a]));
    for (let i = 0; i < outSize; i++) acc[i] /= count;
  }
  if (isFloat(dtype)) {
    const out = floatsFor(dtype, outSize);
    out.set(acc);
    return writeFloats(out, dtype);
  }
  return writeNumbers(acc, dtype);
}
