import { getBackend } from "../backend/registry.js";
import { ValueError } from "../errors.js";
import { codeFor, DYNAMIC_MAP, type QuantType } from "./codes.js";

const f = Math.fround;

/** Double quantisation of the absmax: 8-bit codes in blocks of 256, an offset and a scale per block. */
export interface NestedAbsmax {
  codes: Uint8Array;
  absmax: Float32Array;
  map: Float32Array;
  offset: number;
  blocksize: number;
}

/** Everything needed to turn packed 4-bit codes back into values (bitsandbytes' QuantState). */
export interface QuantState {
  quantType: QuantType;
  blocksize: number;
  /** The weight's real shape, [out, in] for a linear layer. */
  shape: number[];
  /** The dtype the weight had before quantisation (recorded, as bitsandbytes does). */
  dtype: string;
  /** The 16-entry code (quant_map). */
  code: Float32Array;
  /** float32 absmax per block; with double quantisation these are the dequantised values. */
  absmax: Float32Array;
  nested: NestedAbsmax | null;
}

export function checkBlocksize(blocksize: number): void {
  if (![32, 64, 128, 256, 512, 1024, 2048, 4096].includes(blocksize)) {
    throw new ValueError(
      `4-bit blocksize must be a power of two from 32 to 4096, got ${blocksize}`,
    );
  }
}

/** Scales one block into [-1, 1]: x·(1/absmax) for full blocks, x/absmax for a partial last block, as bitsandbytes. */
function scaled(x: number, absmax: number, partial: boolean): number {
  if (absmax === 0) return 0;
  const v = partial ? f(x / absmax) : f(x * f(1 / absmax));
  return Math.min(1, Math.max(-1, v));
}

/** max |x| of each block. */
function blockAbsmax(values: Float32Array, blocksize: number): Float32Array {
  const blocks = Math.ceil(values.length / blocksize);
  const out = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let i = b * blocksize; i < Math.min(values.length, (b + 1) * blocksize); i++)
      m = Math.max(m, Math.abs(values[i]));
    out[b] = m;
  }
  return out;
}

/**
 * Quantises float32 values to 4-bit codes as bitsandbytes does: per block of `blocksize`
 * a float32 absmax, each value scaled into [-1, 1] and given the nearest code (a value
 * exactly between two codes takes the lower one), two codes per byte with the
 * even-indexed element in the high nibble. With `doubleQuant`, the absmax is itself
 * quantised (mean subtracted, 8-bit dynamic map, blocks of 256).
 */
export function quantize4bit(
  values: Float32Array,
  shape: number[],
  options: {
    quantType?: QuantType;
    blocksize?: number;
    doubleQuant?: boolean;
    dtype?: string;
  } = {},
): { packed: Uint8Array; state: QuantState } {
  const quantType = options.quantType ?? "nf4";
  if (quantType !== "nf4" && quantType !== "fp4")
    throw new ValueError(`unknown 4-bit quant type "${quantType}": expected "nf4" or "fp4"`);
  const blocksize = options.blocksize ?? 64;
  checkBlocksize(blocksize);
  const code = codeFor(quantType);
  // Codes sorted by value (stable, so of FP4's two zeros the +0 pattern comes first) and the midpoints between neighbours.
  const order = Array.from(code.keys()).sort((a, b) => code[a] - code[b] || a - b);
  const mids = order.slice(0, -1).map((c, i) => f(f(code[c] + code[order[i + 1]]) / 2));
  const absmax = blockAbsmax(values, blocksize);
  const n = values.length;
  const packed = new Uint8Array(Math.ceil(n / 2));
  const full = Math.floor(n / blocksize) * blocksize;
  for (let i = 0; i < n; i++) {
    const x = scaled(values[i], absmax[Math.floor(i / blocksize)], i >= full);
    let k = 0;
    while (k < mids.length && mids[k] < x) k++;
    const q = order[k];
    packed[i >> 1] |= i % 2 === 0 ? q << 4 : q;
  }
  const state: QuantState = {
    quantType,
    blocksize,
    shape: [...shape],
    dtype: options.dtype ?? "float32",
    code,
    absmax,
    nested: null,
  };
  if (options.doubleQuant) {
    state.nested = quantizeAbsmax(absmax);
    state.absmax = dequantizeAbsmax(state.nested);
  }
  return { packed, state };
}

/** Double quantisation: offset = mean(absmax); (absmax - offset) to 8-bit codes of the dynamic map, blocks of 256. */
export function quantizeAbsmax(absmax: Float32Array, blocksize = 256): NestedAbsmax {
  let sum = 0;
  for (const v of absmax) sum += v;
  const offset = f(sum / absmax.length);
  const centred = absmax.map((v) => f(v - offset));
  const scale = blockAbsmax(centred, blocksize);
  const full = Math.floor(centred.length / blocksize) * blocksize;
  const codes = new Uint8Array(centred.length);
  for (let i = 0; i < centred.length; i++) {
    const x = scaled(centred[i], scale[Math.floor(i / blocksize)], i >= full);
    let best = 0;
    let bestDiff = Infinity;
    for (let j = 0; j < 256; j++) {
      const d = f(Math.abs(f(x - DYNAMIC_MAP[j])));
      if (d < bestDiff) {
        bestDiff = d;
        best = j;
      }
    }
    codes[i] = best;
  }
  return { codes, absmax: scale, map: DYNAMIC_MAP, offset, blocksize };
}

export function dequantizeAbsmax(n: NestedAbsmax): Float32Array {
  return Float32Array.from(n.codes, (q, i) =>
    f(f(n.map[q] * n.absmax[Math.floor(i / n.blocksize)]) + n.offset),
  );
}

/**
 * code[nibble] · absmax[block] in float32, for the `count` elements from flat index
 * `start` (default: all of them).
 */
export function dequantize4bit(
  packed: Uint8Array,
  state: QuantState,
  start = 0,
  count?: number,
): Float32Array {
  const n = count ?? state.shape.reduce((a, b) => a * b, 1) - start;
  return getBackend().dequantize4bit(
    packed,
    state.code,
    state.absmax,
    state.blocksize,
    start,
    n,
    "float32",
  ) as Float32Array;
}
