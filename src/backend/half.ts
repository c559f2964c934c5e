/**
 * IEEE 754 binary16 (float16) and bfloat16 conversions on raw bit patterns.
 *
 * Widening to float32 is exact. Narrowing from float32 rounds to nearest, ties to even,
 * keeps signed zeros and infinities, produces subnormals where float16 has them, and
 * turns every NaN into PyTorch's canonical quiet NaN (float16: sign | 0x7e00;
 * bfloat16: 0x7fc0), so bytes written by peft-ts equal PyTorch's.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

// 65,536 entries, 256 KiB: widening float16 is then a single load.
const F16_TO_F32 = buildF16Table();

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      // Zero or subnormal: mant * 2^-24 is exact in float32.
      table[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    } else if (exp === 31) {
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return table;
}

/** float32 bits -> float16 bits, round to nearest even. */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 : sign | 0x7c00;
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Result is a float16 subnormal (or zero): value = m * 2^(e-38), unit 2^-24.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** float32 bits -> bfloat16 bits, round to nearest even. */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToF32(h: number): number {
  return F16_TO_F32[h & 0xffff];
}

export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** Any JS number -> float16 bits, through float32 as PyTorch does. */
export function toF16(v: number): number {
  f32[0] = v;
  return f32BitsToF16(u32[0]);
}

/** Any JS number -> bfloat16 bits, through float32 as PyTorch does. */
export function toBf16(v: number): number {
  f32[0] = v;
  return f32BitsToBf16(u32[0]);
}

export function f16ArrayToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = F16_TO_F32[src[i]];
  return out;
}

export function bf16ArrayToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

export function f32ArrayToF16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(bits[i]);
  return out;
}

export function f32ArrayToBf16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    out[i] =
      (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}
