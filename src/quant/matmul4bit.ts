import type { FloatDType } from "../backend/dtype.js";
import { getBackend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { cast } from "../tensor/ops/elementwise.js";
import { concat, slice } from "../tensor/ops/layout.js";
import { linear, matmul } from "../tensor/ops/matmul.js";
import { reshape } from "../tensor/ops/view.js";
import { noGrad } from "../tensor/state.js";
import { Tensor } from "../tensor/tensor.js";
import type { QuantState } from "./blockwise.js";

/** Output rows dequantised at a time: a layer's full-precision weight never exists whole. */
const ROWS_PER_CHUNK = 256;

/** Rows [r0, r1) of a 4-bit weight [out, in], dequantised to `dtype`. */
function weightRows(
  packed: Uint8Array,
  state: QuantState,
  r0: number,
  r1: number,
  dtype: FloatDType,
): Tensor {
  const inF = state.shape[1];
  const { code, absmax, blocksize } = state;
  const values = getBackend().dequantize4bit(
    packed,
    code,
    absmax,
    blocksize,
    r0 * inF,
    (r1 - r0) * inF,
    dtype,
  );
  return new Tensor(values, [r1 - r0, inF], dtype);
}

/**
 * y = x Wᵀ (+ bias) for a 4-bit weight, dequantising ROWS_PER_CHUNK output rows at a time
 * in forward and again in backward (dx = dy W), so no full-precision copy of the layer's
 * weight is ever held or kept for the backward pass. The weight is frozen: no dW.
 */
export function linear4bit(
  x: Tensor,
  packed: Uint8Array,
  state: QuantState,
  dtype: FloatDType,
  bias: Tensor | null,
  name: string,
): Tensor {
  const [out, inF] = state.shape;
  const X = cast(x, dtype);
  const lead = X.shape.slice(0, -1);
  const x2 = reshape(X, [-1, inF]);
  const chunks: Tensor[] = [];
  noGrad(() => {
    for (let r = 0; r < out; r += ROWS_PER_CHUNK) {
      const r1 = Math.min(out, r + ROWS_PER_CHUNK);
      chunks.push(linear(x2, weightRows(packed, state, r, r1, dtype), null, { name }));
    }
  });
  let y = chunks.length === 1 ? chunks[0] : concat(chunks, 1);
  y = record(y, "linear4bit", [x2], (dy) => {
    let dx: Tensor | null = null;
    for (let r = 0; r < out; r += ROWS_PER_CHUNK) {
      const r1 = Math.min(out, r + ROWS_PER_CHUNK);
      const part = matmul(slice(dy, 1, r, r1), weightRows(packed, state, r, r1, dtype));
      dx = dx === null ? part : dx.add(part);
    }
    return [dx];
  });
  if (bias !== null) y = y.add(cast(bias, dtype));
  return reshape(y, [...lead, out]);
}

/** The whole dequantised weight, for merging and for DoRA's norms (not used in forward). */
export function dequantizedWeight(
  packed: Uint8Array,
  state: QuantState,
  dtype: FloatDType,
): Tensor {
  return weightRows(packed, state, 0, state.shape[0], dtype);
}
