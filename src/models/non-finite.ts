import type { Tensor } from "../tensor/tensor.js";

/** NaN and ±Inf elements of a float tensor (16-bit floats by their exponent bits). */
export function countNonFinite(t: Tensor): number {
  let n = 0;
  const d = t.data;
  switch (t.dtype) {
    case "float32":
    case "float64":
      for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i] as number)) n++;
      return n;
    case "bfloat16":
      for (let i = 0; i < d.length; i++) if (((d[i] as number) & 0x7f80) === 0x7f80) n++;
      return n;
    case "float16":
      for (let i = 0; i < d.length; i++) if (((d[i] as number) & 0x7c00) === 0x7c00) n++;
      return n;
    default:
      return 0;
  }
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
