import type { FloatDType } from "../backend/dtype.js";
import { getBackend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { cast } from "../tensor/ops/elementwise.js";
import { concat, slice } from "../tensor/ops/layout.js";
import { linear, matmul } from "../tensor/ops/matmul.js";
import { reshape } from "../tensor/ops/view.js";
import { getAutocastDType, noGrad } from "../tensor/state.js";
import { Tensor } from "../tensor/tensor.js";
import type { QuantState } from "./blockwise.js";

/**
 * Weight elements dequantised at a time (16 MiB in float32): a large layer's
 * full-precision weight never exists whole, while a mid-sized one (a 2048x2048
 * projection) is done in one piece. Smaller pieces cost more than they save: on the
 * Llama-3.2-1B shape a LoRA step at 1x512 took 11.2 s with pieces of 1M elements and
 * 8.2 s with 4M, from the many narrow products and the partial input gradients summed
 * in backward.
 */
const ELEMENTS_PER_CHUNK = 1 << 22;

/** Row ranges [r0, r1) covering `out` rows of `inF` elements, in near-equal chunks. */
function rowChunks(out: number, inF: number, budget: number): [number, number][] {
  const count = Math.ceil((out * inF) / budget);
  const rows = Math.ceil(out / Math.max(1, count));
  const chunks: [number, number][] = [];
  for (let r = 0; r < out; r += rows) chunks.push([r, Math.min(out, r + rows)]);
  return chunks;
}

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
 * x2 Wᵀ on the backend's 4-bit kernel, which reads each packed weight once and never
 * writes it out dequantised: a decoding step's few rows cost what reading the weight
 * costs. Null where the backend has no such kernel for these sizes.
 */
function fewRows(x2: Tensor, packed: Uint8Array, state: QuantState, dtype: FloatDType) {
  const kernel = getBackend().linear4bitRows;
  if (kernel === undefined) return null;
  const [out, inF] = state.shape;
  const values = kernel(
    x2.data,
    x2.shape[0],
    inF,
    packed,
    state.code,
    state.absmax,
    state.blocksize,
    out,
    dtype,
  );
  return values === null ? null : new Tensor(values, [x2.shape[0], out], dtype);
}

/**
 * y = x Wᵀ (+ bias) for a 4-bit weight, dequantising a chunk of output rows at a time
 * in forward and again in backward (dx = dy W), so no full-precision copy of the layer's
 * weight is ever held or kept for the backward pass. The weight is frozen: no dW.
 * `chunkElements` bounds the weight elements dequantised at once.
 *
 * The product runs in the compute dtype, or in the autocast dtype inside autocast (as
 * torch.autocast turns bitsandbytes' linear); the backward dequantises into the incoming
 * gradient's dtype, as bitsandbytes does, so a gradient of any float dtype multiplies a
 * weight of its own dtype.
 */
export function linear4bit(
  x: Tensor,
  packed: Uint8Array,
  state: QuantState,
  dtype: FloatDType,
  bias: Tensor | null,
  name: string,
  chunkElements = ELEMENTS_PER_CHUNK,
): Tensor {
  const [out, inF] = state.shape;
  const product = getAutocastDType() ?? dtype;
  const X = cast(x, product);
  const lead = X.shape.slice(0, -1);
  const x2 = reshape(X, [-1, inF]);
  const ranges = rowChunks(out, inF, chunkElements);
  let y = fewRows(x2, packed, state, product);
  if (y === null) {
    const chunks: Tensor[] = [];
    noGrad(() => {
      for (const [r, r1] of ranges) {
        chunks.push(linear(x2, weightRows(packed, state, r, r1, product), null, { name }));
      }
    });
    y = chunks.length === 1 ? chunks[0] : concat(chunks, 1);
  }
  y = record(y, "linear4bit", [x2], (dy) => {
    let dx: Tensor | null = null;
    for (const [r, r1] of ranges) {
      const dyRows = ranges.length === 1 ? dy : slice(dy, 1, r, r1);
      const part = matmul(dyRows, weightRows(packed, state, r, r1, dy.dtype as FloatDType));
      dx = dx === null ? part : dx.add(part);
    }
    return [dx];
  });
  if (bias !== null) y = y.add(cast(bias, product));
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
