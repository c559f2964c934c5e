import type { Module } from "../nn/module.js";

/** transformers' model_type of a model peft-ts loads, or null for a module of its own. */
export function modelTypeOf(model: Module): string | null {
  const t = (model as { modelType?: unknown }).modelType;
  return typeof t === "string" ? t : null;
}

// PEFT 0.13.2's tables (peft/utils/constants.py) for the model types peft-ts loads.

/** LoRA's, also VeRA's and BOFT's. */
export const LORA_TARGETS = {
  llama: ["q_proj", "v_proj"],
  mistral: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
  gpt2: ["c_attn"],
  bert: ["query", "value"],
};

/** AdaLoRA's has no entry for Mistral. */
export const ADALORA_TARGETS = {
  llama: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
  gpt2: ["c_attn"],
  bert: ["query", "value"],
};

export const IA3_TARGETS = {
  llama: ["k_proj", "v_proj", "down_proj"],
  mistral: ["k_proj", "v_proj", "down_proj"],
  qwen2: ["q_proj", "v_proj", "down_proj"],
  gpt2: ["c_attn", "mlp.c_proj"],
  bert: ["key", "value", "output.dense"],
};

export const IA3_FEEDFORWARD: Readonly<Record<string, readonly string[]>> = {
  llama: ["down_proj"],
  mistral: ["down_proj"],
  qwen2: ["down_proj"],
  gpt2: ["mlp.c_proj"],
  bert: ["output.dense"],
};

export const LN_TUNING_TARGETS = {
  llama: ["input_layernorm", "post_attention_layernorm", "norm"],
  mistral: ["input_layernorm", "post_attention_layernorm", "norm"],
  qwen2: ["post_attention_layernorm"],
  gpt2: ["ln_1", "ln_2", "ln_f"],
};
