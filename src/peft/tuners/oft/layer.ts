import { ParameterDict } from "../../../nn/containers.js";
import { uniform, zeros } from "../../../tensor/creation.js";
import { cast, div, minimum, mul, sqrt } from "../../../tensor/ops/elementwise.js";
import { slice, transpose } from "../../../tensor/ops/layout.js";
import { inverse } from "../../../tensor/ops/linalg.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import { sum } from "../../../tensor/ops/reduce.js";
import { noGrad } from "../../../tensor/state.js";
import { overwrite } from "../../../tensor/storage-version.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdapterLayer, type AdapterSettings, type BaseLayer } from "../adapter-layer.js";
import { blockDiagonal, cayley } from "./cayley.js";

export interface OFTSettings extends AdapterSettings {
  /** Number of blocks. */
  r: number;
  moduleDropout: number;
  coft: boolean;
  /** COFT's radius before the division by √(number of stored blocks): eps·b². */
  eps: number;
}

/**
 * OFT as PEFT 0.13.2 computes it: oft_r [r, b, b] (or [1, b, b] shared) with
 * b = ceil(out / r); R = block_diag(Cayley(blocks)) cut to [out, out]; the layer's result
 * without its bias is multiplied by R: y = (x·Wᵀ)·R + bias. Merged, W' = Rᵀ·W.
 */
export class OFTLayer extends AdapterLayer<OFTSettings> {
  protected readonly adapterLayerNames = ["oft_r"] as const;

  constructor(base: BaseLayer) {
    super(base);
    this.registerModule("oft_r", new ParameterDict());
  }

  private blocks(name: string): Tensor {
    return (this.childModule("oft_r") as ParameterDict).get(name)!;
  }

  addAdapter(name: string, s: OFTSettings, blockShare: boolean, init: boolean): void {
    const b = Math.ceil(this.outFeatures / s.r);
    const shape = [blockShare ? 1 : s.r, b, b];
    // kaiming_uniform_(a=√5) on [n, b, b]: fan-in b·b, so U(±1/b).
    const t = init
      ? zeros(shape, { dtype: s.dtype })
      : uniform(shape, -1 / b, 1 / b, { dtype: s.dtype });
    this.register(name, { ...s, eps: s.eps * b * b }, { oft_r: t.requiresGrad_() });
  }

  /** COFT: each stored block is scaled into the ball of radius eps·b²/√n, in place, as PEFT does. */
  private project(name: string): void {
    const s = this.settingsOf(name);
    if (!s.coft) return;
    const blocks = this.blocks(name);
    noGrad(() => {
      const radius = s.eps / Math.sqrt(blocks.shape[0]);
      const a = cast(blocks.detach(), "float64");
      const norm = sqrt(sum(mul(a, a), [1, 2], true));
      // min(1, ρ/‖A‖) keeps blocks inside the ball unchanged.
      const scale = minimum(div(radius, norm), 1);
      overwrite(blocks.data, cast(mul(a, scale), blocks.dtype).data);
    });
  }

  /** R [out, out] in the adapter's dtype. */
  rotation(name: string): Tensor {
    this.project(name);
    const s = this.settingsOf(name);
    const R = blockDiagonal(cayley(this.blocks(name)), s.r);
    const out = this.outFeatures;
    return R.shape[0] === out ? R : slice(slice(R, 0, 0, out), 1, 0, out);
  }

  protected transformOutput(name: string, _x: Tensor, result: Tensor): Tensor {
    if (this.skipsThisStep(this.settingsOf(name).moduleDropout)) return result;
    return this.withoutBias(name, result, (y) => matmul(y, this.rotation(name)));
  }

  // OFT wraps linear layers only, whose weight is stored [out, in].
  protected mergedWeight(name: string, w32: Tensor): Tensor {
    return matmul(transpose(cast(this.rotation(name), "float32")), w32);
  }

  protected unmergedWeight(name: string, w32: Tensor): Tensor {
    const inv = inverse(cast(this.rotation(name), "float64"));
    return cast(matmul(transpose(inv), cast(w32, "float64")), "float32");
  }
}
