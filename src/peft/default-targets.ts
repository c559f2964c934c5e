import type { Module } from "../nn/module.js";

/** transformers' model_type of a model peft-ts loads, or null for a module of its own. */
export function modelTypeOf(model: Module): string | null {
  const t = (model as { modelType?: unknown }).modelType;
  return typeof t === "string" ? t : null;
}

// PEFT 0.13.2's tables (peft/utils/constants.py) for the model types peft-ts loads. Phi-3
// has no entry in any of them: its fused layers must be named.

/** LoRA's, also VeRA's and BOFT's. */
export const LORA_TARGETS = {
  llama: ["q_proj", "v_proj"],
  mistral: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
  gemma: ["q_proj", "v_proj"],
  gemma2: ["q_proj", "v_proj"],
  gpt2: ["c_attn"],
  bert: ["query", "value"],
  roberta: ["query", "value"],
};

/** AdaLoRA's has no entry for Mistral, and RoBERTa's differs from LoRA's. */
export const ADALORA_TARGETS = {
  llama: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
  gpt2: ["c_attn"],
  bert: ["query", "value"],
  roberta: ["query", "key", "value", "dense"],
};

export const IA3_TARGETS = {
  llama: ["k_proj", "v_proj", "down_proj"],
  mistral: ["k_proj", "v_proj", "down_proj"],
  qwen2: ["q_proj", "v_proj", "down_proj"],
  gemma: ["q_proj", "v_proj", "down_proj"],
  gemma2: ["q_proj", "v_proj", "down_proj"],
  gpt2: ["c_attn", "mlp.c_proj"],
  bert: ["key", "value", "output.dense"],
  roberta: ["key", "value", "output.dense"],
};

export const IA3_FEEDFORWARD: Readonly<Record<string, readonly string[]>> = {
  llama: ["down_proj"],
  mistral: ["down_proj"],
  qwen2: ["down_proj"],
  gemma: ["down_proj"],
  gemma2: ["down_proj"],
  gpt2: ["mlp.c_proj"],
  bert: ["output.dense"],
  roberta: ["output.dense"],
};

export const LN_TUNING_TARGETS = {
  llama: ["input_layernorm", "post_attention_layernorm", "norm"],
  mistral: ["input_layernorm", "post_attention_layernorm", "norm"],
  qwen2: ["post_attention_layernorm"],
  gemma: ["input_layernorm", "post_attention_layernorm", "norm"],
  gemma2: [
    "input_layernorm",
    "post_attention_layernorm",
    "pre_feedforward_layernorm",
    "post_feedforward_layernorm",
    "norm",
  ],
  gpt2: ["ln_1", "ln_2", "ln_f"],
};
