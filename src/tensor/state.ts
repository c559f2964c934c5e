import type { FloatDType } from "../backend/dtype.js";
import { ValueError } from "../errors.js";

/** Global grad mode and autocast state. Both apply to synchronous code only. */
let gradEnabled = true;
let autocastDType: FloatDType | null = null;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with gradient recording off: no graph is built, nothing is kept for backward. */
export function noGrad<T>(fn: () => T): T {
  return withState(false, autocastDType, fn, "noGrad");
}

/** Runs fn with gradient recording on (inside a noGrad block, for example). */
export function enableGrad<T>(fn: () => T): T {
  return withState(true, autocastDType, fn, "enableGrad");
}

/** The dtype matmul-class ops run in, or null outside `autocast`. */
export function getAutocastDType(): FloatDType | null {
  return autocastDType;
}

/**
 * Runs fn with matmul-class ops (matmul, linear, attention) computing in `dtype`, like
 * torch.autocast: their floating inputs are cast to `dtype` (with gradients flowing back
 * to the original dtypes), everything else keeps its dtype. `null` turns autocast off.
 */
export function autocast<T>(dtype: FloatDType | null, fn: () => T): T {
  if (dtype !== null && dtype !== "bfloat16" && dtype !== "float16" && dtype !== "float32") {
    throw new ValueError(
      `autocast: expected dtype "bfloat16", "float16", "float32" or null, got ${JSON.stringify(dtype)}`,
    );
  }
  return withState(gradEnabled, dtype, fn, "autocast");
}

function withState<T>(grad: boolean, cast: FloatDType | null, fn: () => T, name: string): T {
  const saved = [gradEnabled, autocastDType] as const;
  gradEnabled = grad;
  autocastDType = cast;
  try {
    const result = fn();
    if (result instanceof Promise) {
      throw new ValueError(
        `${name}: the function returned a Promise; ${name} applies to synchronous code only, so await inside it is not covered`,
      );
    }
    return result;
  } finally {
    [gradEnabled, autocastDType] = saved;
  }
}
