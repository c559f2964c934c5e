import { mul } from "../tensor/ops/elementwise.js";
import { noGrad } from "../tensor/state.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * Scales all gradients so their global L2 norm is at most maxNorm (torch's
 * clip_grad_norm_: coefficient maxNorm / (norm + 1e-6), applied only when below 1).
 * Returns the norm before clipping; Infinity or NaN when a gradient is not finite.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) {
    if (p.grad === null) continue;
    for (const v of p.grad.toFloat32Array()) sq += v * v;
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1 && Number.isFinite(norm)) {
    noGrad(() => {
      for (const p of params) if (p.grad !== null) p.grad = mul(p.grad, coef);
    });
  }
  return norm;
}

/** Whether every gradient is finite. */
export function gradsFinite(params: readonly Tensor[]): boolean {
  for (const p of params) {
    if (p.grad === null) continue;
    for (const v of p.grad.toFloat32Array()) if (!Number.isFinite(v)) return false;
  }
  return true;
}
