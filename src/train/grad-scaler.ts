import { mul } from "../tensor/ops/elementwise.js";
import { noGrad } from "../tensor/state.js";
import type { Tensor } from "../tensor/tensor.js";
import { gradsFinite } from "./clip.js";

export interface GradScalerState {
  scale: number;
  goodSteps: number;
}

/**
 * Dynamic loss scaling for float16 training, as torch.cuda.amp.GradScaler: the loss is
 * multiplied by `scale` before backward, gradients are divided by it before the step; a
 * step whose gradients overflow is skipped and the scale halved; after `growthInterval`
 * good steps the scale doubles.
 */
export class GradScaler {
  scale: number;
  goodSteps = 0;

  constructor(
    initScale = 65536,
    readonly growthFactor = 2,
    readonly backoffFactor = 0.5,
    readonly growthInterval = 2000,
  ) {
    this.scale = initScale;
  }

  scaleLoss(loss: Tensor): Tensor {
    return mul(loss, this.scale);
  }

  /** Unscales gradients in place; returns false (and backs off) when they overflowed. */
  unscale(params: readonly Tensor[]): boolean {
    const ok = gradsFinite(params);
    if (!ok) {
      this.scale *= this.backoffFactor;
      this.goodSteps = 0;
      return false;
    }
    noGrad(() => {
      for (const p of params) if (p.grad !== null) p.grad = mul(p.grad, 1 / this.scale);
    });
    return true;
  }

  /** Call after a successful step. */
  update(): void {
    this.goodSteps++;
    if (this.goodSteps >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.goodSteps = 0;
    }
  }

  state(): GradScalerState {
    return { scale: this.scale, goodSteps: this.goodSteps };
  }

  load(s: GradScalerState): void {
    this.scale = s.scale;
    this.goodSteps = s.goodSteps;
  }
}
