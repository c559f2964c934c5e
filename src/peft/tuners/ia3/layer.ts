import { ParameterDict } from "../../../nn/containers.js";
import { ones, randn } from "../../../tensor/creation.js";
import { add, cast, div, mul } from "../../../tensor/ops/elementwise.js";
import { reshape } from "../../../tensor/ops/view.js";
import { noGrad } from "../../../tensor/state.js";
import { overwrite } from "../../../tensor/storage-version.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdapterLayer, type AdapterSettings, type BaseLayer } from "../adapter-layer.js";

export interface IA3Settings extends AdapterSettings {
  /** Scales the layer's input (feed-forward modules) instead of its output. */
  feedforward: boolean;
}

/**
 * (IA)³ on a linear layer: y = W (x ⊙ l) for feed-forward layers (ia3_l [1, in]), else
 * y = (W x + b) ⊙ l (ia3_l [out, 1]). Merging scales the weight's columns or rows.
 */
export class IA3Layer extends AdapterLayer<IA3Settings> {
  protected readonly adapterLayerNames = ["ia3_l"] as const;

  constructor(base: BaseLayer) {
    super(base);
    this.registerModule("ia3_l", new ParameterDict());
  }

  /** The scales as a vector over the features they multiply. */
  scales(name: string): Tensor {
    const l = (this.childModule("ia3_l") as ParameterDict).get(name)!;
    return reshape(l, [-1]);
  }

  addAdapter(name: string, s: IA3Settings, init: boolean): void {
    const shape = s.feedforward ? [1, this.inFeatures] : [this.outFeatures, 1];
    const l = init ? ones(shape, { dtype: s.dtype }) : randn(shape, { dtype: s.dtype });
    this.register(name, s, { ia3_l: l.requiresGrad_() });
  }

  protected override transformInput(name: string, x: Tensor): Tensor {
    if (!this.settingsOf(name).feedforward) return x;
    return cast(mul(this.adapterInput(name, x), this.scales(name)), x.dtype);
  }

  protected transformOutput(name: string, _x: Tensor, result: Tensor): Tensor {
    if (this.settingsOf(name).feedforward) return result;
    return cast(mul(cast(result, this.adapterDType(name)), this.scales(name)), result.dtype);
  }

  /** The scales shaped to broadcast over the stored weight: rows (outputs) or columns (inputs). */
  private weightScales(name: string): Tensor {
    const l = cast(this.scales(name), "float32");
    const outIn = this.settingsOf(name).feedforward ? reshape(l, [1, -1]) : reshape(l, [-1, 1]);
    return this.toStoredLayout(outIn);
  }

  protected mergedWeight(name: string, w32: Tensor): Tensor {
    return mul(w32, this.weightScales(name));
  }

  protected unmergedWeight(name: string, w32: Tensor): Tensor {
    // PEFT divides by l + 1e-8.
    return div(w32, add(this.weightScales(name), 1e-8));
  }

  protected override mergeOne(name: string): void {
    super.mergeOne(name);
    this.scaleBias(name, (b, l) => mul(b, l));
  }

  protected override unmergeOne(name: string): void {
    super.unmergeOne(name);
    this.scaleBias(name, (b, l) => div(b, add(l, 1e-8)));
  }

  /** An output-scaling adapter scales the bias too, as the result it multiplies includes it. */
  private scaleBias(name: string, f: (b32: Tensor, l32: Tensor) => Tensor): void {
    const bias = this.baseBias;
    if (bias === null || this.settingsOf(name).feedforward) return;
    noGrad(() => {
      const next = f(cast(bias.detach(), "float32"), cast(this.scales(name), "float32"));
      overwrite(bias.data, cast(next, bias.dtype).data);
    });
  }
}
