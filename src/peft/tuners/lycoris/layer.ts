import type { FloatDType } from "../../../backend/dtype.js";
import { rand, uniform } from "../../../tensor/creation.js";
import { div, gt, mul } from "../../../tensor/ops/elementwise.js";
import { linear } from "../../../tensor/ops/matmul.js";
import { mean } from "../../../tensor/ops/reduce.js";
import { reshape } from "../../../tensor/ops/view.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { type AdapterSettings, AdditiveLayer } from "../adapter-layer.js";

export interface LycorisSettings extends AdapterSettings {
  r: number;
  alpha: number;
  rankDropout: number;
  moduleDropout: number;
}

/** A trainable [rows, cols] factor drawn as nn.init.kaiming_uniform_(a=√5): U(±1/√cols). */
export function kaimingFactor(rows: number, cols: number, dtype: FloatDType): Tensor {
  const bound = 1 / Math.sqrt(cols);
  return uniform([rows, cols], -bound, bound, { dtype }).requiresGrad_();
}

/**
 * LyCORIS methods (LoHa, LoKr) as PEFT runs them: the adapter builds a full ΔW [out, in]
 * from its factors and the layer adds x·ΔWᵀ. While training, rank dropout zeroes rows of
 * ΔW (rescaled by the kept share) and module dropout skips the adapter for a forward.
 */
export abstract class LycorisLayer<S extends LycorisSettings> extends AdditiveLayer<S> {
  /** ΔW as [out, in] in the adapter's dtype, before rank dropout. */
  protected abstract deltaOutIn(name: string): Tensor;

  protected delta(name: string, x: Tensor): Tensor {
    const s = this.settingsOf(name);
    let w = this.deltaOutIn(name);
    if (this.training && s.rankDropout > 0) {
      const keep = gt(rand([w.shape[0]]), s.rankDropout).to(w.dtype);
      w = mul(w, reshape(div(keep, mean(keep)), [-1, 1]));
    }
    return linear(x, w);
  }

  protected override transformOutput(name: string, x: Tensor, result: Tensor): Tensor {
    if (this.skipsThisStep(this.settingsOf(name).moduleDropout)) return result;
    return super.transformOutput(name, x, result);
  }

  deltaWeight(name: string): Tensor {
    return this.toStoredLayout(this.deltaOutIn(name).to("float32"));
  }
}
