import type { Backend, PackedWeight } from "../../backend/backend.js";
import type { FloatDType } from "../../backend/dtype.js";
import { isCurrent, type StorageStamp, stampOf } from "../storage-version.js";
import type { Tensor } from "../tensor.js";
import { backend, storageAs } from "./util.js";

/**
 * Packing frozen linear weights for the backend (see Backend.packWeight): off by default,
 * because each packed copy takes as much memory as its weight, which is kept too (the
 * backward pass and every other op read the plain one). On for this process with
 * setWeightPacking(true) or PEFT_PACK_WEIGHTS=1.
 */
let enabled = globalThis.process?.env?.PEFT_PACK_WEIGHTS === "1";

interface Entry {
  source: StorageStamp;
  backend: Backend;
  packed: PackedWeight;
}

// Per weight tensor and compute dtype (under autocast a float32 weight is packed in
// bfloat16, which also saves casting it on every call).
let cache = new WeakMap<Tensor, Map<FloatDType, Entry>>();

/** Turns weight packing on or off; off also drops every packed copy. */
export function setWeightPacking(on: boolean): void {
  enabled = on;
  if (!on) cache = new WeakMap();
}

export function isWeightPackingEnabled(): boolean {
  return enabled;
}

/**
 * The packed copy of a frozen 2-D weight in `dtype`, packing it on first use and again
 * after its values change; null when packing is off, the weight is trained, or the
 * backend does not pack this dtype.
 */
export function packedWeight(weight: Tensor, dtype: FloatDType): PackedWeight | null {
  if (!enabled || weight.requiresGrad || weight.ndim !== 2) return null;
  const b = backend();
  if (b.packWeight === undefined || b.matmulPacked === undefined) return null;
  let byDType = cache.get(weight);
  const hit = byDType?.get(dtype);
  if (hit !== undefined && isCurrent(hit.source, weight.data) && hit.backend === b)
    return hit.packed;
  const [n, k] = weight.shape;
  const packed = b.packWeight(storageAs(weight, dtype), n, k, dtype);
  if (packed === null) return null;
  if (byDType === undefined) {
    byDType = new Map();
    cache.set(weight, byDType);
  }
  byDType.set(dtype, { source: stampOf(weight.data), backend: b, packed });
  return packed;
}
