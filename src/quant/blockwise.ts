import { bf16ArrayToF32, f16ArrayToF32 } from "../backend/half.js";
import { getBackend } from "../backend/registry.js";
import { ValueError } from "../errors.js";
import type { Tensor } from "../tensor/tensor.js";
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

/**
 * Scales one block into [-1, 1]: x·(1/absmax) for full blocks, x/absmax for a partial
 * last block, as bitsandbytes does; a block whose absmax is 0 scales to 0.
 */
function scaleBlock(
  values: Float32Array,
  start: number,
  end: number,
  absmax: number,
  partial: boolean,
  out: Float32Array,
): void {
  const inv = f(1 / absmax);
  for (let i = start; i < end; i++) {
    const v = absmax === 0 ? 0 : partial ? values[i] / absmax : values[i] * inv;
    // out is float32, so the store rounds as Math.fround would; NaN passes through.
    out[i - start] = Math.min(1, Math.max(-1, v));
  }
}

const CELLS = 4096;

/**
 * How many of the sorted midpoints lie below x, for x in [-1, 1] (NaN: 0). [-1, 1] is cut
 * into cells narrower than the gap between any two midpoints, so a cell holds at most
 * one: the count is the cell's count below it plus one comparison, which is almost always
 * predictable, where a search over all midpoints branches unpredictably at every step.
 */
function midpointLookup(mids: readonly number[]): (x: number) => number {
  const below = new Uint8Array(CELLS + 1);
  const inside = new Float32Array(CELLS + 1).fill(Infinity);
  const cellOf = (x: number) => Math.min(CELLS, Math.max(0, Math.floor((x + 1) * (CELLS / 2))));
  for (let c = 0; c <= CELLS; c++) {
    const lower = c / (CELLS / 2) - 1;
    below[c] = mids.filter((m) => m < lower).length;
  }
  for (const m of mids) {
    const c = cellOf(m);
    if (inside[c] !== Infinity) throw new Error("4-bit code midpoints closer than a lookup cell");
    inside[c] = m;
  }
  return (x) => {
    const c = cellOf(x) | 0;
    return below[c] + (inside[c] < x ? 1 : 0);
  };
}

const TABLES = new Map<QuantType, { order: Uint8Array; lookup: (x: number) => number }>();

/**
 * A code's indices sorted by value (stable, so of FP4's two zeros the +0 pattern comes
 * first) and the lookup over the midpoints between neighbours, built once per code.
 */
function codeTables(quantType: QuantType) {
  let tables = TABLES.get(quantType);
  if (tables === undefined) {
    const code = codeFor(quantType);
    const sorted = Array.from(code.keys()).sort((a, b) => code[a] - code[b] || a - b);
    const mids = sorted.slice(0, -1).map((c, i) => f(f(code[c] + code[sorted[i + 1]]) / 2));
    tables = { order: Uint8Array.from(sorted), lookup: midpointLookup(mids) };
    TABLES.set(quantType, tables);
  }
  return tables;
}

/** max |x| over values[lo, hi); NaN if one is NaN. */
function maxAbs(values: Float32Array, lo: number, hi: number): number {
  let m = 0;
  for (let i = lo; i < hi; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** Elements converted to float32 at a time: a multiple of every blocksize. */
const CHUNK = 1 << 16;

/**
 * The values as float32 pieces of CHUNK elements, [offset, piece]: views of a
 * Float32Array or of a float32 tensor, otherwise converted into one reused buffer, so a
 * 16-bit weight is never copied whole.
 */
function* float32Pieces(values: Float32Array | Tensor): Generator<[number, Float32Array]> {
  const data = values instanceof Float32Array ? values : values.data;
  const dtype = values instanceof Float32Array ? "float32" : values.dtype;
  const scratch = dtype === "float32" ? null : new Float32Array(Math.min(CHUNK, data.length));
  for (let offset = 0; offset < data.length; offset += CHUNK) {
    const end = Math.min(data.length, offset + CHUNK);
    if (scratch === null) {
      yield [offset, (data as Float32Array).subarray(offset, end)];
      continue;
    }
    const out = scratch.subarray(0, end - offset);
    if (dtype === "bfloat16") bf16ArrayToF32((data as Uint16Array).subarray(offset, end), out);
    else if (dtype === "float16") f16ArrayToF32((data as Uint16Array).subarray(offset, end), out);
    else if (dtype === "float64") out.set((data as Float64Array).subarray(offset, end));
    else throw new ValueError(`4-bit quantisation needs a float tensor, got ${dtype}`);
    yield [offset, out];
  }
}

/**
 * Quantises values (a float32 array, or a float tensor read piece by piece) to 4-bit
 * codes as bitsandbytes does: per block of `blocksize` a float32 absmax, each value
 * scaled into [-1, 1] and given the nearest code (a value exactly between two codes
 * takes the lower one), two codes per byte with the even-indexed element in the high
 * nibble. With `doubleQuant`, the absmax is itself quantised (mean subtracted, 8-bit
 * dynamic map, blocks of 256).
 */
export function quantize4bit(
  values: Float32Array | Tensor,
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
  const { order, lookup } = codeTables(quantType);
  const n = values instanceof Float32Array ? values.length : values.size;
  const absmax = new Float32Array(Math.ceil(n / blocksize));
  const packed = new Uint8Array(Math.ceil(n / 2));
  const full = Math.floor(n / blocksize) * blocksize;
  const x = new Float32Array(blocksize);
  for (const [offset, piece] of float32Pieces(values)) {
    for (let lo = 0; lo < piece.length; lo += blocksize) {
      const hi = Math.min(piece.length, lo + blocksize);
      const start = offset + lo;
      const m = maxAbs(piece, lo, hi);
      absmax[start / blocksize] = m;
      scaleBlock(piece, lo, hi, m, start >= full, x);
      // Blocks have an even size, so only the last one can end in half a byte.
      for (let i = 0; i < hi - lo; i += 2) {
        const low = i + 1 < hi - lo ? order[lookup(x[i + 1])] : 0;
        packed[(start + i) >> 1] = (order[lookup(x[i])] << 4) | low;
      }
    }
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
  const scale = Float32Array.from({ length: Math.ceil(centred.length / blocksize) }, (_, b) =>
    maxAbs(centred, b * blocksize, Math.min(centred.length, (b + 1) * blocksize)),
  );
  const full = Math.floor(centred.length / blocksize) * blocksize;
  const codes = new Uint8Array(centred.length);
  const x = new Float32Array(blocksize);
  for (let start = 0; start < centred.length; start += blocksize) {
    const end = Math.min(centred.length, start + blocksize);
    scaleBlock(centred, start, end, scale[start / blocksize], start >= full, x);
    for (let i = start; i < end; i++) codes[i] = nearestDynamic(x[i - start]);
  }
  return { codes, absmax: scale, map: DYNAMIC_MAP, offset, blocksize };
}

// The map under a module-local name: its hot loop then skips the imported binding's lookup.
const MAP = DYNAMIC_MAP;

const distance = (x: number, j: number) => f(Math.abs(f(x - MAP[j])));

/**
 * The first index of the entry of the (ascending) dynamic map nearest to x. The distance
 * falls, then rises along the map, so a binary search and a walk to the first minimum
 * give what a scan of all 256 entries gives.
 */
function nearestDynamic(x: number): number {
  if (Number.isNaN(x)) return 0;
  let lo = 0;
  let hi = MAP.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (MAP[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  let j = lo;
  while (j + 1 < MAP.length && distance(x, j + 1) < distance(x, j)) j++;
  while (j > 0 && distance(x, j - 1) <= distance(x, j)) j--;
  return j;
}

export function dequantizeAbsmax(n: NestedAbsmax): Float32Array {
  const out = new Float32Array(n.codes.length);
  const { codes, map, absmax, blocksize, offset } = n;
  for (let i = 0; i < codes.length; i++)
    out[i] = f(map[codes[i]] * absmax[Math.floor(i / blocksize)]) + offset;
  return out;
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
