import { describe, expect, it } from "vitest";
import {
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32BitsToBf16,
  f32BitsToF16,
} from "./half.js";

// An independent model of both formats: decode with plain arithmetic, and round by
// searching the sorted list of representable values, with no bit tricks shared with half.ts.
interface Format {
  name: string;
  mantBits: number;
  bias: number;
  decode(h: number): number;
  widen(h: number): number;
  narrowBits(f32bits: number): number;
  widenArray(src: Uint16Array): Float32Array;
  narrowArray(src: Float32Array): Uint16Array;
  canonicalNaN(sign: number): number;
}

function makeDecoder(expBits: number, mantBits: number, bias: number) {
  return (h: number): number => {
    const sign = h >> (expBits + mantBits) ? -1 : 1;
    const exp = (h >> mantBits) & ((1 << expBits) - 1);
    const mant = h & ((1 << mantBits) - 1);
    if (exp === (1 << expBits) - 1) return mant === 0 ? sign * Infinity : Number.NaN;
    if (exp === 0) return sign * mant * 2 ** (1 - bias - mantBits);
    return sign * (1 + mant / 2 ** mantBits) * 2 ** (exp - bias);
  };
}

const FORMATS: Format[] = [
  {
    name: "float16",
    mantBits: 10,
    bias: 15,
    decode: makeDecoder(5, 10, 15),
    widen: f16ToF32,
    narrowBits: f32BitsToF16,
    widenArray: (s) => f16ArrayToF32(s),
    narrowArray: (s) => f32ArrayToF16(s),
    canonicalNaN: (sign) => (sign ? 0xfe00 : 0x7e00),
  },
  {
    name: "bfloat16",
    mantBits: 7,
    bias: 127,
    decode: makeDecoder(8, 7, 127),
    widen: bf16ToF32,
    narrowBits: f32BitsToBf16,
    widenArray: (s) => bf16ArrayToF32(s),
    narrowArray: (s) => f32ArrayToBf16(s),
    canonicalNaN: () => 0x7fc0,
  },
];

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);
function f32Bits(v: number): number {
  scratch[0] = v;
  return scratchBits[0];
}
function f32FromBits(b: number): number {
  scratchBits[0] = b >>> 0;
  return scratch[0];
}

/** Positive finite values of a format in increasing order, with their bit patterns. */
function positiveValues(fmt: Format): { values: number[]; bits: number[] } {
  const values: number[] = [];
  const bits: number[] = [];
  const infBits = ((1 << (15 - fmt.mantBits)) - 1) << fmt.mantBits;
  for (let h = 0; h < infBits; h++) {
    values.push(fmt.decode(h));
    bits.push(h);
  }
  return { values, bits };
}

/** Round-to-nearest-even by search: the independent oracle for narrowing. */
function roundBySearch(table: { values: number[]; bits: number[] }, v: number): number {
  const signBit = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  const { values, bits } = table;
  const last = values.length - 1;
  const infBits = bits[last] + 1;
  // The first value past the largest finite one, as if the exponent range went on.
  const beyond = values[last] + (values[last] - values[last - 1]);
  let lo = 0;
  let hi = last;
  if (a >= values[last]) {
    const dLo = a - values[last];
    const dHi = beyond - a;
    if (dLo < dHi) return signBit | bits[last];
    if (dLo > dHi) return signBit | infBits;
    return signBit | ((bits[last] & 1) === 0 ? bits[last] : infBits);
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - values[lo];
  const dHi = values[hi] - a;
  if (dLo < dHi) return signBit | bits[lo];
  if (dLo > dHi) return signBit | bits[hi];
  return signBit | ((bits[lo] & 1) === 0 ? bits[lo] : bits[hi]);
}

describe.each(FORMATS)("$name", (fmt) => {
  const table = positiveValues(fmt);

  it("widens all 65,536 bit patterns exactly", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const widened = fmt.widenArray(all);
    for (let h = 0; h < 65536; h++) {
      const expected = fmt.decode(h);
      const got = fmt.widen(h);
      if (Number.isNaN(expected)) {
        expect(Number.isNaN(got)).toBe(true);
        expect(Number.isNaN(widened[h])).toBe(true);
      } else if (!Object.is(got, expected) || !Object.is(widened[h], expected)) {
        expect.fail(
          `pattern 0x${h.toString(16)}: expected ${expected}, got ${got} / ${widened[h]}`,
        );
      }
    }
  });

  it("narrows every representable value back to its own bits (round trip)", () => {
    for (let h = 0; h < 65536; h++) {
      const v = fmt.decode(h);
      if (Number.isNaN(v)) continue;
      expect(fmt.narrowBits(f32Bits(v))).toBe(h);
    }
  });

  it("rounds midpoints to even and their float32 neighbours to the nearer value", () => {
    const { values } = table;
    const cases: number[] = [];
    for (let i = 0; i + 1 < values.length; i++) {
      const mid = (values[i] + values[i + 1]) / 2;
      const b = f32Bits(mid);
      // The midpoint is exact in float32 for both formats; test it and one float32 ulp each side.
      cases.push(b, b - 1, b + 1);
    }
    const top = values[values.length - 1];
    const midTop = f32Bits(top + (top - values[values.length - 2]) / 2);
    cases.push(midTop, midTop - 1, midTop + 1);
    for (const b of cases) {
      for (const sign of [0, 0x80000000]) {
        const bits = (b | sign) >>> 0;
        const v = f32FromBits(bits);
        const expected = roundBySearch(table, v);
        const got = fmt.narrowBits(bits);
        if (got !== expected) {
          expect.fail(
            `${v} (0x${bits.toString(16)}): expected 0x${expected.toString(16)}, got 0x${got.toString(16)}`,
          );
        }
      }
    }
  });

  it("agrees with the search oracle on 300,000 random float32 values", () => {
    let state = 12345;
    const src = new Float32Array(300_000);
    const srcBits = new Uint32Array(src.buffer);
    for (let i = 0; i < src.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      srcBits[i] = state;
    }
    const out = fmt.narrowArray(src);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      const expected = Number.isNaN(v)
        ? fmt.canonicalNaN(srcBits[i] >>> 31)
        : roundBySearch(table, v);
      if (out[i] !== expected) {
        expect.fail(
          `${v} (0x${srcBits[i].toString(16)}): expected 0x${expected.toString(16)}, got 0x${out[i].toString(16)}`,
        );
      }
    }
  });

  it("keeps signed zeros and infinities, turns NaN into the canonical quiet NaN", () => {
    const infBits = ((1 << (15 - fmt.mantBits)) - 1) << fmt.mantBits;
    expect(fmt.narrowBits(f32Bits(0))).toBe(0);
    expect(fmt.narrowBits(f32Bits(-0))).toBe(0x8000);
    expect(fmt.narrowBits(f32Bits(Infinity))).toBe(infBits);
    expect(fmt.narrowBits(f32Bits(-Infinity))).toBe(0x8000 | infBits);
    expect(fmt.narrowBits(0x7fc00000)).toBe(fmt.canonicalNaN(0));
    expect(fmt.narrowBits(0xffc00001)).toBe(fmt.canonicalNaN(1));
    expect(fmt.narrowBits(0x7f800001)).toBe(fmt.canonicalNaN(0));
    expect(Object.is(fmt.widen(0x8000), -0)).toBe(true);
  });
});

describe("float16 specifics", () => {
  it("produces subnormals and underflows ties to zero", () => {
    expect(f32BitsToF16(f32Bits(2 ** -24))).toBe(1);
    expect(f32BitsToF16(f32Bits(2 ** -25))).toBe(0); // tie between 0 and 2^-24: even is 0
    expect(f32BitsToF16(f32Bits(1.5 * 2 ** -24))).toBe(2); // tie between 1 and 2 units: even is 2
    expect(f32BitsToF16(f32Bits(2 ** -25 + 2 ** -40))).toBe(1);
    expect(f32BitsToF16(f32Bits(65504))).toBe(0x7bff);
    expect(f32BitsToF16(f32Bits(65519.99))).toBe(0x7bff);
    expect(f32BitsToF16(f32Bits(65520))).toBe(0x7c00);
  });
});
