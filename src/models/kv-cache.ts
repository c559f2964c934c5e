import { cast } from "../tensor/ops/elementwise.js";
import { concat } from "../tensor/ops/layout.js";
import type { Tensor } from "../tensor/tensor.js";

/** Keys and values of the positions already processed, per layer, each [B, Hkv, T, D]. */
export class KVCache {
  private readonly layers: ({ k: Tensor; v: Tensor } | null)[];

  constructor(numLayers: number) {
    this.layers = new Array(numLayers).fill(null);
  }

  /** Number of cached positions. */
  get length(): number {
    return this.layers[0]?.k.shape[2] ?? 0;
  }

  /**
   * Appends this step's keys and values to layer `i` and returns the full ones. Entries
   * of another dtype (a prefix kept in float32 before bfloat16 keys) take the new dtype.
   */
  update(i: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const prev = this.layers[i];
    const next =
      prev === null
        ? { k, v }
        : { k: concat([cast(prev.k, k.dtype), k], 2), v: concat([cast(prev.v, v.dtype), v], 2) };
    this.layers[i] = next;
    return next;
  }
}
