import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { saveSafetensors } from "../io/safetensors/writer.js";
import type { Module } from "../nn/module.js";

const COPIED = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/**
 * Writes `model` as a transformers-style directory: model.safetensors with the model's
 * own tensor names, and config/tokenizer files copied from the directory it came from.
 */
export function saveModelDirectory(model: Module, sourceDir: string, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  saveSafetensors(join(outDir, "model.safetensors"), model.stateDict(), { format: "pt" });
  for (const f of COPIED)
    if (existsSync(join(sourceDir, f))) copyFileSync(join(sourceDir, f), join(outDir, f));
}
