import { add, div, mul, sqrt, sub } from "../../../tensor/ops/elementwise.js";
import { linear, matmul } from "../../../tensor/ops/matmul.js";
import { sum } from "../../../tensor/ops/reduce.js";
import { reshape } from "../../../tensor/ops/view.js";
import { noGrad } from "../../../tensor/state.js";
import type { Tensor } from "../../../tensor/tensor.js";
import type { LoraParts, LoraVariant } from "./variant.js";

/** ‖W + s·B·A‖₂ of each output row, float32, W as [out, in]. */
function rowNorm(w32: Tensor, p: LoraParts): Tensor {
  const w = add(w32, mul(matmul(p.B.to("float32"), p.A.to("float32")), p.scale));
  return sqrt(sum(mul(w, w), 1));
}

const magnitude = (p: LoraParts) => p.extra.get("lora_magnitude_vector")!;

/**
 * DoRA (PEFT 0.13): the weight's direction W + s·B·A normalised per output row, times a
 * trained magnitude m per row. The norm is a constant for the gradient, as in PEFT.
 */
export class Dora implements LoraVariant {
  /** The norm at merge time, kept to unmerge exactly. */
  private mergedNorm: Tensor | null = null;

  create(p: LoraParts): Record<string, Tensor> {
    const m = noGrad(() => rowNorm(p.baseWeight("float32"), p));
    return {
      lora_magnitude_vector: m
        .to(p.A.dtype as never)
        .detach()
        .requiresGrad_(),
    };
  }

  delta(p: LoraParts, x: Tensor): Tensor {
    const dtype = p.A.dtype;
    const lora = linear(linear(x, p.A), p.B);
    // (m/n - 1)·(x Wᵀ) + (m/n)·s·B A x.
    const n = noGrad(() => rowNorm(p.baseWeight("float32"), p)).to(dtype as never);
    const ratio = div(magnitude(p), n);
    const base = linear(x, p.baseWeight(dtype));
    return add(mul(base, sub(ratio, 1)), mul(mul(lora, ratio), p.scale));
  }

  /** W' = (m / n)·(W + s·B·A), n = ‖W + s·B·A‖ per output row. */
  merged(p: LoraParts, w32: Tensor, delta32: Tensor): Tensor {
    const n = noGrad(() => rowNorm(w32, p));
    this.mergedNorm = n;
    return mul(add(w32, delta32), reshape(div(magnitude(p).to("float32"), n), [-1, 1]));
  }

  unmerged(p: LoraParts, w32: Tensor, delta32: Tensor): Tensor {
    const n = this.mergedNorm!;
    this.mergedNorm = null;
    return sub(mul(w32, reshape(div(n, magnitude(p).to("float32")), [-1, 1])), delta32);
  }
}
