import { ParameterDict } from "../../../nn/containers.js";
import { zeros } from "../../../tensor/creation.js";
import { mul } from "../../../tensor/ops/elementwise.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import type { Tensor } from "../../../tensor/tensor.js";
import type { BaseLayer } from "../adapter-layer.js";
import { kaimingFactor, LycorisLayer, type LycorisSettings } from "../lycoris/layer.js";

const NAMES = ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"] as const;

/** LoHa: a Hadamard product of two rank-r products, w1_a [out, r]·w1_b [r, in] and w2_a·w2_b. */
export class LoHaLayer extends LycorisLayer<LycorisSettings> {
  protected readonly adapterLayerNames = NAMES;

  constructor(base: BaseLayer) {
    super(base);
    for (const n of NAMES) this.registerModule(n, new ParameterDict());
  }

  private factor(dict: (typeof NAMES)[number], name: string): Tensor {
    return (this.childModule(dict) as ParameterDict).get(name)!;
  }

  /** PEFT's initialisation: kaiming-uniform factors, w2_b zero unless `init` is false. */
  addAdapter(name: string, s: LycorisSettings, init: boolean): void {
    const [out, inF, r, d] = [this.outFeatures, this.inFeatures, s.r, s.dtype];
    this.register(name, s, {
      hada_w1_a: kaimingFactor(out, r, d),
      hada_w1_b: kaimingFactor(r, inF, d),
      hada_w2_a: kaimingFactor(out, r, d),
      hada_w2_b: init ? zeros([r, inF], { dtype: d }).requiresGrad_() : kaimingFactor(r, inF, d),
    });
  }

  protected deltaOutIn(name: string): Tensor {
    const s = this.settingsOf(name);
    const one = matmul(this.factor("hada_w1_a", name), this.factor("hada_w1_b", name));
    const two = matmul(this.factor("hada_w2_a", name), this.factor("hada_w2_b", name));
    return mul(mul(one, two), s.alpha / s.r);
  }
}
