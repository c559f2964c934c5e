import type { FloatDType } from "../../../backend/dtype.js";
import { ParameterDict } from "../../../nn/containers.js";
import { randn, zeros } from "../../../tensor/creation.js";
import { dropout } from "../../../tensor/ops/dropout.js";
import { mul } from "../../../tensor/ops/elementwise.js";
import { concat, slice } from "../../../tensor/ops/layout.js";
import { linear, matmul } from "../../../tensor/ops/matmul.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdditiveLayer, type BaseLayer } from "../adapter-layer.js";

export interface AdaLoraSettings {
  /** Ranks this layer holds (initR, or the ranks kept in a pruned file). */
  r: number;
  alpha: number;
  dropout: number;
  /** The rank the scaling divides by: initR, also for pruned layers (as PEFT). */
  ranknum: number;
  dtype: FloatDType;
}

const NAMES = ["lora_A", "lora_E", "lora_B"] as const;
export type AdaLoraFactor = (typeof NAMES)[number];

/** The entries `keep` of `t` along `axis`, in order (a pruned AdaLoRA factor). */
export function keepAlong(t: Tensor, axis: number, keep: readonly number[]): Tensor {
  if (keep.length === t.shape[axis]) return t;
  if (keep.length === 0)
    return zeros(
      t.shape.map((d, i) => (i === axis ? 0 : d)),
      { dtype: t.dtype as FloatDType },
    );
  return concat(
    keep.map((i) => slice(t, axis, i, i + 1)),
    axis,
  );
}

/**
 * AdaLoRA on a linear layer (PEFT's SVDLinear): ΔW = B·(A ⊙ E)·scaling / (ranknum + 1e-5)
 * with A [r, in] the right singular vectors, E [r, 1] the singular values and B [out, r]
 * the left ones; scaling is lora_alpha itself (r when alpha is 0). Pruning a rank zeroes
 * its E entry while training and drops its row and column when saved.
 */
export class AdaLoraLayer extends AdditiveLayer<AdaLoraSettings> {
  protected readonly adapterLayerNames = NAMES;

  constructor(base: BaseLayer) {
    super(base);
    for (const n of NAMES) this.registerModule(n, new ParameterDict());
  }

  factor(dict: AdaLoraFactor, name: string): Tensor {
    return (this.childModule(dict) as ParameterDict).get(name)!;
  }

  /**
   * PEFT's draws in PEFT's order, so a seed gives PEFT's tensors: A, E, B and a discarded
   * normal (PEFT's ranknum placeholder) from randn; with `init`, E = 0 and A, B ~ N(0, 0.02²).
   */
  addAdapter(name: string, s: AdaLoraSettings, init: boolean): void {
    const d = { dtype: s.dtype };
    const draw = (shape: number[]) => randn(shape, d);
    let A = draw([s.r, this.inFeatures]);
    let E = draw([s.r, 1]);
    let B = draw([this.outFeatures, s.r]);
    randn([1]);
    if (init) {
      E = zeros([s.r, 1], d);
      A = randn([s.r, this.inFeatures], { ...d, std: 0.02 });
      B = randn([this.outFeatures, s.r], { ...d, std: 0.02 });
    }
    this.register(name, s, {
      lora_A: A.requiresGrad_(),
      lora_E: E.requiresGrad_(),
      lora_B: B.requiresGrad_(),
    });
  }

  /** scaling / (ranknum + 1e-5), the factor on B·(A ⊙ E)·x. */
  scale(name: string): number {
    const s = this.settingsOf(name);
    const scaling = s.alpha > 0 ? s.alpha : s.r;
    return scaling / (s.ranknum + 1e-5);
  }

  protected delta(name: string, x: Tensor, baseResult: Tensor): Tensor {
    const s = this.settingsOf(name);
    if (s.r === 0) return zeros(baseResult.shape, { dtype: s.dtype });
    const xd = this.training && s.dropout > 0 ? dropout(x, s.dropout) : x;
    const AE = mul(this.factor("lora_A", name), this.factor("lora_E", name));
    return linear(mul(linear(xd, AE), this.scale(name)), this.factor("lora_B", name));
  }

  deltaWeight(name: string): Tensor {
    const f = (dict: AdaLoraFactor) => this.factor(dict, name).to("float32");
    if (this.settingsOf(name).r === 0)
      return this.toStoredLayout(zeros([this.outFeatures, this.inFeatures]));
    const AE = mul(f("lora_A"), f("lora_E"));
    return this.toStoredLayout(mul(matmul(f("lora_B"), AE), this.scale(name)));
  }
}
