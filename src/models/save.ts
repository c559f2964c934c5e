import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { readJsonFile } from "../io/config.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import type { Module } from "../nn/module.js";
import { quantizationConfig, quantizedStateDict } from "../quant/save.js";

const COPIED = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/**
 * Writes `model` as a transformers-style directory: model.safetensors with the model's
 * own tensor names (4-bit layers in bitsandbytes' layout), config.json (with a
 * quantization_config exactly when the model is 4-bit), and the generation and
 * tokenizer files copied from the directory it came from.
 */
export function saveModelDirectory(model: Module, sourceDir: string, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  saveSafetensors(join(outDir, "model.safetensors"), quantizedStateDict(model), { format: "pt" });
  for (const f of COPIED)
    if (existsSync(join(sourceDir, f))) copyFileSync(join(sourceDir, f), join(outDir, f));
  const config = readJsonFile(join(sourceDir, "config.json")) as Record<string, unknown>;
  const quant = quantizationConfig(model);
  if (quant === null) delete config.quantization_config;
  else config.quantization_config = quant;
  writeFileAtomic(join(outDir, "config.json"), [
    new TextEncoder().encode(JSON.stringify(config, null, 2)),
  ]);
}
