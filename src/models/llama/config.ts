import type { ConfigReader } from "../../io/config.js";

export interface LlamaConfig {
  modelType: "llama" | "qwen2" | "mistral";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  /** The trained context; rotary positions run beyond it. */
  maxPositionEmbeddings: number;
  numHeads: number;
  numKVHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama with attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  hiddenAct: "silu";
  /**
   * Mistral's (and Qwen2's, when enabled) sliding attention window. Windows are not
   * implemented: longer inputs are refused rather than computed differently.
   */
  slidingWindow: number | null;
}

export function parseLlamaConfig(c: ConfigReader): LlamaConfig {
  const modelType = c.oneOf("model_type", ["llama", "qwen2", "mistral"] as const);
  c.unsupported("rope_scaling", "only the default rotary embedding is implemented");
  if (c.has("pretraining_tp") && c.int("pretraining_tp") !== 1)
    c.unsupported("pretraining_tp", "must be 1");
  const hiddenSize = c.int("hidden_size", undefined, 1);
  const numHeads = c.int("num_attention_heads", undefined, 1);
  const numKVHeads = c.int("num_key_value_heads", numHeads, 1);
  if (numHeads % numKVHeads !== 0)
    c.unsupported("num_key_value_heads", `${numHeads} attention heads are not a multiple of it`);
  const attentionBias = c.bool("attention_bias", false);
  return {
    modelType,
    vocabSize: c.int("vocab_size", undefined, 1),
    hiddenSize,
    intermediateSize: c.int("intermediate_size", undefined, 1),
    numLayers: c.int("num_hidden_layers", undefined, 1),
    maxPositionEmbeddings: c.int("max_position_embeddings", DEFAULT_MAX_POSITIONS[modelType], 1),
    numHeads,
    numKVHeads,
    headDim: c.int("head_dim", Math.floor(hiddenSize / numHeads), 2),
    rmsNormEps: c.number("rms_norm_eps", 1e-6),
    ropeTheta: c.number("rope_theta", 10000),
    tieWordEmbeddings: c.bool("tie_word_embeddings", false),
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: modelType !== "qwen2" && attentionBias,
    mlpBias: c.bool("mlp_bias", false),
    hiddenAct: c.oneOf("hidden_act", ["silu"] as const, "silu"),
    slidingWindow:
      c.has("sliding_window") && (modelType === "mistral" || c.bool("use_sliding_window", false))
        ? c.int("sliding_window", undefined, 1)
        : null,
  };
}

/** transformers' defaults for max_position_embeddings. */
const DEFAULT_MAX_POSITIONS = { llama: 2048, qwen2: 32768, mistral: 4096 * 32 } as const;
