import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveSafetensors } from "../../io/safetensors/writer.js";
import { randn } from "../../tensor/creation.js";
import { Generator } from "../../tensor/random.js";
import type { Tensor } from "../../tensor/tensor.js";
import { byteTokenizerFiles } from "./byte-tokenizer.js";

/**
 * The embedded default: a small Llama (2 layers, hidden 64, byte-level vocabulary of 259)
 * with random weights drawn like transformers' init (normal, std 0.02; norms at 1), made
 * deterministically from a seed in well under a second, and a small question-answer set.
 */
export const DEMO_CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 259,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  hidden_act: "silu",
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
  torch_dtype: "float32",
};

/** Opposites the demo adapter learns; the base model knows none of them. */
export const DEMO_PAIRS: [string, string][] = [
  ["hot", "cold"],
  ["up", "down"],
  ["big", "small"],
  ["fast", "slow"],
  ["day", "night"],
  ["open", "closed"],
  ["happy", "sad"],
  ["light", "dark"],
  ["early", "late"],
  ["full", "empty"],
  ["win", "lose"],
  ["old", "new"],
];

export function demoPrompt(word: string): string {
  return `Q: opposite of ${word}?\nA:`;
}

function weights(seed: number): Map<string, Tensor> {
  const c = DEMO_CONFIG;
  const g = new Generator(seed);
  const normal = (shape: number[]) => randn(shape, { generator: g, std: 0.02 });
  const ones = (n: number) => randn([n], { generator: g, std: 0 }).add(1);
  const kv = c.num_key_value_heads * c.head_dim;
  const t = new Map<string, Tensor>([
    ["model.embed_tokens.weight", normal([c.vocab_size, c.hidden_size])],
  ]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    t.set(
      `${p}.self_attn.q_proj.weight`,
      normal([c.num_attention_heads * c.head_dim, c.hidden_size]),
    );
    t.set(`${p}.self_attn.k_proj.weight`, normal([kv, c.hidden_size]));
    t.set(`${p}.self_attn.v_proj.weight`, normal([kv, c.hidden_size]));
    t.set(
      `${p}.self_attn.o_proj.weight`,
      normal([c.hidden_size, c.num_attention_heads * c.head_dim]),
    );
    t.set(`${p}.mlp.gate_proj.weight`, normal([c.intermediate_size, c.hidden_size]));
    t.set(`${p}.mlp.up_proj.weight`, normal([c.intermediate_size, c.hidden_size]));
    t.set(`${p}.mlp.down_proj.weight`, normal([c.hidden_size, c.intermediate_size]));
    t.set(`${p}.input_layernorm.weight`, ones(c.hidden_size));
    t.set(`${p}.post_attention_layernorm.weight`, ones(c.hidden_size));
  }
  t.set("model.norm.weight", ones(c.hidden_size));
  // A wider output head than transformers' 0.02 lets this 64-wide model express confident
  // predictions, so the loss can fall far once the adapter has learned the answers.
  t.set("lm_head.weight", randn([c.vocab_size, c.hidden_size], { generator: g, std: 0.5 }));
  return t;
}

/** Writes the demo model directory (as transformers would) unless it is already there. */
export function buildDemoModel(dir: string, seed = 0): string {
  if (existsSync(join(dir, "model.safetensors")) && existsSync(join(dir, "tokenizer.json")))
    return dir;
  mkdirSync(dir, { recursive: true });
  const { tokenizer, config } = byteTokenizerFiles();
  writeFileSync(join(dir, "config.json"), JSON.stringify(DEMO_CONFIG, null, 2));
  writeFileSync(
    join(dir, "generation_config.json"),
    JSON.stringify({ bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 }, null, 2),
  );
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2));
  saveSafetensors(join(dir, "model.safetensors"), weights(seed), { format: "pt" });
  return dir;
}

/** Writes the demo's training set as prompt/completion JSONL. */
export function writeDemoData(path: string): string {
  const lines = DEMO_PAIRS.map(([q, a]) =>
    JSON.stringify({ prompt: demoPrompt(q), completion: ` ${a}` }),
  );
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}
