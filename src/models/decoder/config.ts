import type { RopeConfig } from "./rope.js";

/**
 * A decoder-only transformer as the switches where Llama, Qwen2, Mistral, Gemma, Gemma 2
 * and Phi-3 differ. A family is a config reader (families.ts) that sets them.
 */
export interface DecoderConfig {
  /** transformers' model_type: PEFT's default targets are keyed by it. */
  modelType: string;
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
  rope: RopeConfig;
  /** Rotary embedding of the sliding-window layers where it differs (Gemma 3: a smaller base there). */
  localRope: RopeConfig | null;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama with attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  /** The gate's activation in down(act(gate(x)) * up(x)). */
  hiddenAct: "silu" | "gelu_pytorch_tanh" | "gelu";
  /** Gemma: every RMSNorm scales by (1 + w), its weight starting at 0. */
  normPlusOne: boolean;
  /** Gemma: embeddings times sqrt(hidden), the factor rounded to the compute dtype. */
  scaleEmbeddings: boolean;
  /** Gemma 2: post_attention_layernorm on the attention output, pre/post_feedforward_layernorm around the MLP. */
  sandwichNorms: boolean;
  /** Qwen3 style RMSNorm over each head's queries and keys (q_norm, k_norm). */
  qkNorm: boolean;
  /** Phi-3: one qkv_proj (rows q, k, v) and one gate_up_proj (gate rows, then up rows). */
  fusedProjections: boolean;
  /** Scores are q·k times this; default 1/sqrt(head_dim) (Gemma 2: query_pre_attn_scalar^-0.5). */
  attentionScale: number;
  /** Gemma 2: scores = tanh(scores / cap) · cap before the mask. */
  attnLogitSoftcap: number | null;
  /** Gemma 2: logits = tanh(logits / cap) · cap. */
  finalLogitSoftcap: number | null;
  /** Per layer: query i sees key j only if j > i - window; null is full causal attention. */
  slidingWindows: (number | null)[];
}

/** A plain Llama with these sizes; every family switch off. For models built in code. */
export function llamaConfig(
  sizes: Pick<
    DecoderConfig,
    | "vocabSize"
    | "hiddenSize"
    | "intermediateSize"
    | "numLayers"
    | "numHeads"
    | "numKVHeads"
    | "headDim"
  > &
    Partial<DecoderConfig>,
): DecoderConfig {
  return {
    modelType: "llama",
    maxPositionEmbeddings: 2048,
    rmsNormEps: 1e-6,
    rope: { theta: 10000, dim: sizes.headDim, scaling: { type: "default" } },
    localRope: null,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    hiddenAct: "silu",
    normPlusOne: false,
    scaleEmbeddings: false,
    sandwichNorms: false,
    qkNorm: false,
    fusedProjections: false,
    attentionScale: 1 / Math.sqrt(sizes.headDim),
    attnLogitSoftcap: null,
    finalLogitSoftcap: null,
    slidingWindows: new Array(sizes.numLayers).fill(null),
    ...sizes,
  };
}
