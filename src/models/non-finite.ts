import type { Tensor } from "../tensor/tensor.js";

/** NaN and ±Inf elements of a float tensor (16-bit floats by their exponent bits). */
export function countNonFinite(t: Tensor): number {
  switch (t.dtype) {
    case "float32":
    case "float64":
      return countWhere(t.data as Float32Array | Float64Array, (v) => !Number.isFinite(v));
    case "bfloat16":
      return countExponentAllOnes(t.data as Uint16Array, 0x7f80);
    case "float16":
      return countExponentAllOnes(t.data as Uint16Array, 0x7c00);
    default:
      return 0;
  }
}

// Each loop sees one array type, so it stays monomorphic: a scan of a model's weights
// costs little next to reading them.
function countWhere(d: Float32Array | Float64Array, bad: (v: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < d.length; i++) if (bad(d[i])) n++;
  return n;
}

function countExponentAllOnes(d: Uint16Array, mask: number): number {
  if (d.byteOffset % 4 === 0 && !anyExponentAllOnes(d, mask)) return 0;
  let n = 0;
  for (let i = 0; i < d.length; i++) if ((d[i] & mask) === mask) n++;
  return n;
}

/**
 * Whether some element's exponent bits (`mask`) are all ones, two elements per 32-bit
 * word: one more than a full exponent field (shifted down a bit, so no sum leaves 31
 * bits) carries into bit 14 of its half, and no other sum reaches it. Checking a
 * weight this way costs a quarter of counting it element by element.
 */
function anyExponentAllOnes(d: Uint16Array, mask: number): boolean {
  const half = mask >>> 1;
  const fields = half * 0x10001;
  const one = (half & -half) * 0x10001;
  const words = new Uint32Array(d.buffer, d.byteOffset, d.length >>> 1);
  let acc = 0;
  for (let i = 0; i < words.length; i++) acc |= ((words[i] >>> 1) & fields) + one;
  const last = d.length % 2 === 1 ? d[d.length - 1] : 0;
  return (acc & 0x40004000) !== 0 || (last & mask) === mask;
}

/**
 * Collects the checkpoint tensors that hold NaN or ±Inf while a model loads. Such a
 * weight poisons every output it reaches, so loading names it instead of leaving the user
 * to find it from NaN losses.
 */
export class NonFiniteWeights {
  private readonly found: [string, number, number][] = [];

  check(name: string, t: Tensor): void {
    const n = countNonFinite(t);
    if (n > 0) this.found.push([name, n, t.size]);
  }

  /** The warning to give, or null when every weight is finite. */
  warning(dir: string): string | null {
    if (this.found.length === 0) return null;
    const list = this.found
      .slice(0, 8)
      .map(
        ([name, n, size]) =>
          `${name} (${n.toLocaleString("en-US")} of ${size.toLocaleString("en-US")})`,
      )
      .join(", ");
    return `${dir}: ${this.found.length} weight tensor(s) hold NaN or infinite values: ${list}${this.found.length > 8 ? ", ..." : ""}; the model's outputs will not be finite`;
  }
}
