import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readJsonFile } from "../io/config.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import type { Tensor } from "../tensor/tensor.js";
import { toSortedJson } from "./config.js";
import { isPeftType, PEFT_METHODS, PEFT_TYPES } from "./registry.js";
import type { AdapterConfig } from "./tuners/tuner.js";

export const CONFIG_NAME = "adapter_config.json";
export const WEIGHTS_NAME = "adapter_model.safetensors";

/** Reads adapter_config.json into the config class its peft_type names. */
export function readAdapterConfig(
  dir: string,
  onWarning: (msg: string) => void = console.warn,
): AdapterConfig {
  const path = join(dir, CONFIG_NAME);
  if (!existsSync(path))
    throw new FileNotFoundError(path, `no ${CONFIG_NAME}: not a PEFT adapter directory`);
  const json = readJsonFile(path);
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new FileFormatError(path, "expected a JSON object");
  const type = (json as Record<string, unknown>).peft_type;
  if (!isPeftType(type))
    throw new FileFormatError(
      path,
      `peft_type ${JSON.stringify(type)} is not supported; supported: ${PEFT_TYPES.join(", ")}`,
    );
  let config: AdapterConfig;
  try {
    config = PEFT_METHODS[type].config.fromJson(json as Record<string, unknown>);
  } catch (e) {
    if (e instanceof ValueError) throw new FileFormatError(path, e.message);
    throw e;
  }
  const unknown = Object.keys(config.extra);
  if (unknown.length > 0)
    onWarning(
      `${path}: keys not used by this version of peft-ts, kept as they are: ${unknown.join(", ")}`,
    );
  return config;
}

/** Writes adapter_config.json and adapter_model.safetensors (atomically) into `dir`. */
export function writeAdapter(
  dir: string,
  config: AdapterConfig,
  tensors: Map<string, Tensor>,
): void {
  mkdirSync(dir, { recursive: true });
  const json = { ...config.toJson(), inference_mode: true };
  saveSafetensors(join(dir, WEIGHTS_NAME), tensors, { format: "pt" });
  writeFileAtomic(join(dir, CONFIG_NAME), [new TextEncoder().encode(toSortedJson(json))]);
}

/** Reads adapter_model.safetensors. */
export function readAdapterWeights(dir: string): Map<string, Tensor> {
  const path = join(dir, WEIGHTS_NAME);
  if (!existsSync(path)) {
    const bin = join(dir, "adapter_model.bin");
    throw new FileNotFoundError(
      path,
      existsSync(bin)
        ? "only adapter_model.bin is present; peft-ts reads safetensors adapters only"
        : `no ${WEIGHTS_NAME} in the adapter directory`,
    );
  }
  const file = SafetensorsFile.open(path);
  try {
    return file.loadAll();
  } finally {
    file.close();
  }
}
