import type { FloatDType, Storage } from "../dtype.js";
import { floatsFor, readFloats, writeFloats } from "./float.js";

// Both kernels view x as [outer, n, inner] and work along the middle axis.

export function softmax(
  x: Storage,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
  dtype: FloatDType,
): Storage {
  const src = readFloats(x, dtype);
  const out = floatsFor(dtype, src.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let max = -Infinity;
      for (let k = 0; k < n; k++) max = Math.max(max, src[base + k * inner]);
      // A row of -Infinity has no maximum to subtract; keep it finite so exp gives 0.
      if (max === -Infinity) max = 0;
      let sum = 0;
      for (let k = 0; k < n; k++) sum += Math.exp(src[base + k * inner] - max);
      const logSum = Math.log(sum);
      for (let k = 0; k < n; k++) {
        const z = src[base + k * inner] - max;
        out[base + k * inner] = log ? z - logSum : Math.exp(z) / sum;
      }
    }
  }
  return writeFloats(out, dtype);
}

export function softmaxGrad(
  y: Storage,
  dy: Storage,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
  dtype: FloatDType,
): Storage {
  const Y = readFloats(y, dtype);
  const G = readFloats(dy, dtype);
  const out = floatsFor(dtype, Y.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let s = 0;
      // softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
      for (let k = 0; k < n; k++)
        s += log ? G[base + k * inner] : G[base + k * inner] * Y[base + k * inner];
      for (let k = 0; k < n; k++) {
        const at = base + k * inner;
        out[at] = log ? G[at] - Math.exp(Y[at]) * s : Y[at] * (G[at] - s);
      }
    }
  }
  return writeFloats(out, dtype);
}
