import type { FloatDType, Storage } from "../dtype.js";
import { writeFloats } from "./float.js";

/**
 * Blockwise 4-bit dequantisation in bitsandbytes' layout: two codes per byte, the
 * even-indexed element in the high nibble; each value is code[nibble] · absmax[block] in
 * float32, then rounded to `dtype`.
 */
export function dequantize4bit(
  packed: Uint8Array,
  code: Float32Array,
  absmax: Float32Array,
  blocksize: number,
  start: number,
  count: number,
  dtype: FloatDType,
): Storage {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const j = start + i;
    const byte = packed[j >> 1];
    out[i] = code[j % 2 === 0 ? byte >> 4 : byte & 15] * absmax[Math.floor(j / blocksize)];
  }
  return dtype === "float64" ? Float64Array.from(out) : writeFloats(out, dtype);
}
