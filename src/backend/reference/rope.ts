import type { FloatDType, Storage } from "../dtype.js";
import { floatsFor, readFloats, writeFloats } from "./float.js";

/**
 * Rotary embedding in the half-rotation layout: with h = dim/2,
 *   y[i]     = x[i] cos[i]     - x[i+h] sin[i]       (i < h)
 *   y[i+h]   = x[i+h] cos[i+h] + x[i] sin[i+h]
 * The inverse (the backward pass, the transpose of this linear map) is
 *   dx[i]    = dy[i] cos[i]     + dy[i+h] sin[i+h]
 *   dx[i+h]  = dy[i+h] cos[i+h] - dy[i] sin[i]
 */
export function rope(
  x: Storage,
  cos: Storage,
  sin: Storage,
  batch: number,
  heads: number,
  seq: number,
  dim: number,
  cosBatch: number,
  inverse: boolean,
  dtype: FloatDType,
): Storage {
  const X = readFloats(x, dtype);
  const C = readFloats(cos, dtype);
  const S = readFloats(sin, dtype);
  const out = floatsFor(dtype, X.length);
  const half = dim / 2;
  for (let b = 0; b < batch; b++) {
    const tableB = cosBatch === 1 ? 0 : b;
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < seq; t++) {
        const at = ((b * heads + h) * seq + t) * dim;
        const tab = (tableB * seq + t) * dim;
        for (let i = 0; i < half; i++) {
          const x1 = X[at + i];
          const x2 = X[at + i + half];
          if (inverse) {
            out[at + i] = x1 * C[tab + i] + x2 * S[tab + i + half];
            out[at + i + half] = x2 * C[tab + i + half] - x1 * S[tab + i];
          } else {
            out[at + i] = x1 * C[tab + i] - x2 * S[tab + i];
            out[at + i + half] = x2 * C[tab + i + half] + x1 * S[tab + i + half];
          }
        }
      }
    }
  }
  return writeFloats(out, dtype);
}
