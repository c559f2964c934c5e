import type { Stats } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { floatsFor, readFloats, writeFloats } from "./float.js";

export function crossEntropy(
  logits: Storage,
  targets: Int32Array,
  rows: number,
  classes: number,
  ignoreIndex: number,
  dtype: FloatDType,
): { loss: Stats; lse: Stats } {
  const X = readFloats(logits, dtype);
  const Out = dtype === "float64" ? Float64Array : Float32Array;
  const loss = new Out(rows);
  const lse = new Out(rows);
  for (let r = 0; r < rows; r++) {
    const at = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, X[at + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(X[at + c] - max);
    lse[r] = max + Math.log(sum);
    loss[r] = targets[r] === ignoreIndex ? 0 : max + Math.log(sum) - X[at + targets[r]];
  }
  return { loss, lse };
}

export function crossEntropyGrad(
  logits: Storage,
  targets: Int32Array,
  lse: Stats,
  dloss: Stats,
  rows: number,
  classes: number,
  ignoreIndex: number,
  dtype: FloatDType,
): Storage {
  const X = readFloats(logits, dtype);
  const out = floatsFor(dtype, rows * classes);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === ignoreIndex) continue;
    const at = r * classes;
    const g = dloss[r];
    for (let c = 0; c < classes; c++) out[at + c] = g * Math.exp(X[at + c] - lse[r]);
    out[at + targets[r]] -= g;
  }
  return writeFloats(out, dtype);
}
