import type { Tensor } from "../tensor/tensor.js";
import type { GenerationConfig } from "./generation-config.js";
import type { KVCache } from "./kv-cache.js";

export interface CausalLMInputs {
  /** [B, T] integer token ids (or give inputsEmbeds instead). */
  inputIds?: Tensor | null;
  /** [B, T, hidden] input embeddings in place of inputIds (prompt tuning prepends to them). */
  inputsEmbeds?: Tensor | null;
  /** [B, past + T], 1 for real tokens and 0 for padding; default all ones. */
  attentionMask?: Tensor | null;
  /** [B, T] or [T] positions; default past + 0..T-1. */
  positionIds?: Tensor | null;
  /** [B, T] targets for the next-token loss (shifted inside), -100 to ignore. */
  labels?: Tensor | null;
  /** Keys and values of earlier positions; extended in place when given. */
  pastKeyValues?: KVCache | null;
}

export interface CausalLMOutput {
  /** [B, T, vocab] */
  logits: Tensor;
  /** Mean next-token cross-entropy over non-ignored labels (float32), when labels are given. */
  loss?: Tensor;
  pastKeyValues?: KVCache;
}

/** What generate() needs from a model. */
export interface CausalLanguageModel {
  forward(inputs: CausalLMInputs): CausalLMOutput;
  newCache(): KVCache;
  training: boolean;
  train(mode?: boolean): unknown;
  /** Defaults for options the caller leaves undefined. */
  generationConfig?: GenerationConfig;
  /** Positions past which the model cannot run (learned absolute positions); null or absent: no limit. */
  maxPositions?: number | null;
}
