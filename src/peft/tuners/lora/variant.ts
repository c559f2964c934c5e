import type { Tensor } from "../../../tensor/tensor.js";

/** What a LoRA variant reads of its layer for one adapter. */
export interface LoraParts {
  /** A [r, in] and B [out, r], in the adapter dtype. */
  A: Tensor;
  B: Tensor;
  scale: number;
  /** The base weight as [out, in] in a dtype. */
  baseWeight(dtype: Tensor["dtype"]): Tensor;
  /** The layer's trainable tensors of this adapter beyond A and B, by dictionary name. */
  extra: Map<string, Tensor>;
}

/**
 * A change of LoRA's computation for one adapter (DoRA): its own tensors, its delta and
 * its merge. Plain LoRA has none; the layer asks the variant where one is set.
 */
export interface LoraVariant {
  /** Tensors to create with the adapter, by the LoRA layer's dictionary name. */
  create(parts: LoraParts): Record<string, Tensor>;
  /** The delta for input x (already cast to the adapter dtype and dropped out). */
  delta(parts: LoraParts, x: Tensor): Tensor;
  /** The merged base weight from the float32 base weight, both [out, in]. */
  merged(parts: LoraParts, w32: Tensor, delta32: Tensor): Tensor;
  unmerged(parts: LoraParts, w32: Tensor, delta32: Tensor): Tensor;
}
