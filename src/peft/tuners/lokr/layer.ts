import { ParameterDict } from "../../../nn/containers.js";
import { zeros } from "../../../tensor/creation.js";
import { mul } from "../../../tensor/ops/elementwise.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import { reshape } from "../../../tensor/ops/view.js";
import type { Tensor } from "../../../tensor/tensor.js";
import type { BaseLayer } from "../adapter-layer.js";
import { kaimingFactor, LycorisLayer, type LycorisSettings } from "../lycoris/layer.js";

export interface LoKrSettings extends LycorisSettings {
  decomposeBoth: boolean;
  decomposeFactor: number;
}

const NAMES = ["lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b"] as const;

/**
 * PEFT's split of a dimension into m·n with m <= n: `factor` itself when it divides the
 * dimension, else the divisor pair closest to balanced with m at most `factor` (-1: any).
 */
export function factorization(dimension: number, factor = -1): [number, number] {
  if (factor > 0 && dimension % factor === 0) {
    const [m, n] = [factor, dimension / factor];
    return m > n ? [n, m] : [m, n];
  }
  const limit = factor < 0 ? dimension : factor;
  let [m, n] = [1, dimension];
  const length = m + n;
  while (m < n) {
    let next = m + 1;
    while (dimension % next !== 0) next++;
    const other = dimension / next;
    if (next + other > length || next > limit) break;
    [m, n] = [next, other];
  }
  return m > n ? [n, m] : [m, n];
}

/** kron(a [m, n], b [p, q]) = [m·p, n·q], by broadcasting, so it has a gradient. */
export function kron(a: Tensor, b: Tensor): Tensor {
  const [m, n] = a.shape;
  const [p, q] = b.shape;
  return reshape(mul(reshape(a, [m, 1, n, 1]), reshape(b, [1, p, 1, q])), [m * p, n * q]);
}

/**
 * LoKr (PEFT 0.13.2): out = l·k and in = m·n are factorised; w1 [l, m] and w2 [k, n] are
 * full matrices, or rank-r products where the rank is below half their larger side
 * (w1 only with decompose_both). ΔW = w1 ⊗ w2, with no alpha/r factor: 0.13.2 stores the
 * scaling but does not apply it (0.14 does).
 */
export class LoKrLayer extends LycorisLayer<LoKrSettings> {
  protected readonly adapterLayerNames = NAMES;

  constructor(base: BaseLayer) {
    super(base);
    for (const n of NAMES) this.registerModule(n, new ParameterDict());
  }

  private factor(dict: (typeof NAMES)[number], name: string): Tensor | undefined {
    return (this.childModule(dict) as ParameterDict).get(name);
  }

  addAdapter(name: string, s: LoKrSettings, init: boolean): void {
    const [outL, outK] = factorization(this.outFeatures, s.decomposeFactor);
    const [inM, inN] = factorization(this.inFeatures, s.decomposeFactor);
    const { r, dtype } = s;
    const useW1 = !(s.decomposeBoth && r < Math.max(outL, inM) / 2);
    const useW2 = !(r < Math.max(outK, inN) / 2);
    const zero = (rows: number, cols: number) => zeros([rows, cols], { dtype }).requiresGrad_();
    const draw = (rows: number, cols: number, zeroed: boolean) =>
      init && zeroed ? zero(rows, cols) : kaimingFactor(rows, cols, dtype);
    // PEFT's default init zeroes w1 (or w1_a): ΔW starts at 0.
    const tensors: Record<string, Tensor> = useW1
      ? { lokr_w1: draw(outL, inM, true) }
      : { lokr_w1_a: draw(outL, r, true), lokr_w1_b: draw(r, inM, false) };
    if (useW2) tensors.lokr_w2 = draw(outK, inN, false);
    else
      Object.assign(tensors, { lokr_w2_a: draw(outK, r, false), lokr_w2_b: draw(r, inN, false) });
    this.register(name, s, tensors);
  }

  private side(name: string, which: "1" | "2"): Tensor {
    const full = this.factor(`lokr_w${which}`, name);
    if (full !== undefined) return full;
    return matmul(this.factor(`lokr_w${which}_a`, name)!, this.factor(`lokr_w${which}_b`, name)!);
  }

  protected deltaOutIn(name: string): Tensor {
    return kron(this.side(name, "1"), this.side(name, "2"));
  }
}
