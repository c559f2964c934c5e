import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isFloat } from "../backend/dtype.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readJsonFile } from "../io/read-file.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import type { Module } from "../nn/module.js";
import { quantizationConfig, quantizedStateDict } from "../quant/save.js";
import type { Tensor } from "../tensor/tensor.js";

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
  const tensors = quantizedStateDict(model);
  saveSafetensors(join(outDir, "model.safetensors"), tensors, { format: "pt" });
  // Renamed into place, so a symlink at the name is replaced, never written through.
  for (const f of COPIED)
    if (existsSync(join(sourceDir, f)))
      writeFileAtomic(join(outDir, f), [readFileSync(join(sourceDir, f))]);
  const config = readJsonFile(join(sourceDir, "config.json")) as Record<string, unknown>;
  const quant = quantizationConfig(model);
  if (quant === null) delete config.quantization_config;
  else config.quantization_config = quant;
  // transformers' torch_dtype names the dtype the weights are stored in; dtype "auto" reads it.
  const dtype = floatDTypeOf(tensors.values());
  if (dtype !== null) config.torch_dtype = dtype;
  writeFileAtomic(join(outDir, "config.json"), [
    new TextEncoder().encode(JSON.stringify(config, null, 2)),
  ]);
}

/** The float dtype holding most elements (4-bit bytes and integer buffers aside). */
function floatDTypeOf(tensors: Iterable<Tensor>): string | null {
  const by = new Map<string, number>();
  for (const t of tensors) if (isFloat(t.dtype)) by.set(t.dtype, (by.get(t.dtype) ?? 0) + t.size);
  let best: string | null = null;
  for (const [d, n] of by) if (best === null || n > by.get(best)!) best = d;
  return best;
}
