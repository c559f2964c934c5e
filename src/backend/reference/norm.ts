import type { NormGrads, NormResult } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { floatsFor, readFloats, writeFloats } from "./float.js";

/**
 * LayerNorm and RMSNorm over the last axis of [rows, n]. Statistics are accumulated in
 * float64 and kept as float32, or as float64 for float64 tensors so that gradient
 * checks stay exact.
 */
export function norm(
  kind: "layer" | "rms",
  x: Storage,
  w: Storage | null,
  b: Storage | null,
  rows: number,
  n: number,
  eps: number,
  dtype: FloatDType,
): NormResult {
  const X = readFloats(x, dtype);
  const W = w === null ? null : readFloats(w, dtype);
  const B = b === null ? null : readFloats(b, dtype);
  const normalized = floatsFor(dtype, rows * n);
  const Stats = dtype === "float64" ? Float64Array : Float32Array;
  const mean = kind === "layer" ? new Stats(rows) : null;
  const rstd = new Stats(rows);
  for (let r = 0; r < rows; r++) {
    const [mu, inv] = stats(kind, X, r * n, n, eps);
    if (mean !== null) mean[r] = mu;
    rstd[r] = inv;
    for (let j = 0; j < n; j++) normalized[r * n + j] = (X[r * n + j] - mu) * inv;
  }
  if (W === null && B === null) return { y: writeFloats(normalized, dtype), mean, rstd };
  // Hugging Face's RMSNorm rounds the normalised value to the input dtype before the
  // weight multiplies it; LayerNorm applies the affine part in float32.
  const xhat = kind === "rms" ? readFloats(writeFloats(normalized, dtype), dtype) : normalized;
  const out = floatsFor(dtype, rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      const v = xhat[r * n + j] * (W === null ? 1 : W[j]);
      out[r * n + j] = B === null ? v : v + B[j];
    }
  }
  return { y: writeFloats(out, dtype), mean, rstd };
}

function stats(
  kind: "layer" | "rms",
  X: ArrayLike<number>,
  at: number,
  n: number,
  eps: number,
): [number, number] {
  let mu = 0;
  if (kind === "layer") {
    for (let j = 0; j < n; j++) mu += X[at + j];
    mu /= n;
  }
  let v = 0;
  for (let j = 0; j < n; j++) v += (X[at + j] - mu) ** 2;
  return [mu, 1 / Math.sqrt(v / n + eps)];
}

export function normGrad(
  kind: "layer" | "rms",
  x: Storage,
  w: Storage | null,
  saved: NormResult,
  dy: Storage,
  rows: number,
  n: number,
  needW: boolean,
  needB: boolean,
  dtype: FloatDType,
): NormGrads {
  const X = readFloats(x, dtype);
  const W = w === null ? null : readFloats(w, dtype);
  const G = readFloats(dy, dtype);
  const dx = floatsFor(dtype, rows * n);
  const dw = needW ? new Float64Array(n) : null;
  const db = needB ? new Float64Array(n) : null;
  const xhat = new Float64Array(n);
  const gh = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const at = r * n;
    const mu = saved.mean?.[r] ?? 0;
    const inv = saved.rstd[r];
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < n; j++) {
      xhat[j] = (X[at + j] - mu) * inv;
      gh[j] = G[at + j] * (W === null ? 1 : W[j]);
      sumG += gh[j];
      sumGX += gh[j] * xhat[j];
      if (dw !== null) dw[j] += G[at + j] * xhat[j];
      if (db !== null) db[j] += G[at + j];
    }
    // d xhat/dx projected: LayerNorm removes the mean and the xhat direction, RMSNorm only the latter.
    const meanG = kind === "layer" ? sumG / n : 0;
    for (let j = 0; j < n; j++) dx[at + j] = inv * (gh[j] - meanG - (xhat[j] * sumGX) / n);
  }
  const narrow = (v: Float64Array | null) =>
    v === null ? null : writeFloats(dtype === "float64" ? v : Float32Array.from(v), dtype);
  return { dx: writeFloats(dx, dtype), dw: narrow(dw), db: narrow(db) };
}
