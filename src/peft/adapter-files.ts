import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";
import { parseJsonText } from "../io/config.js";
import type { ModelFiles } from "../io/files/model-files.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { serializeSafetensors } from "../io/safetensors/writer.js";
import { sha256 } from "../io/sha256.js";
import type { Tensor } from "../tensor/tensor.js";
import { toSortedJson } from "./config.js";
import { isPeftType, PEFT_METHODS, PEFT_TYPES } from "./registry.js";
import type { AdapterConfig } from "./tuners/tuner.js";

// An adapter's two files, their bytes, and reading them from a model's files: nothing
// here touches a file system (saving to and reading from directories: save-load.ts).

export const CONFIG_NAME = "adapter_config.json";
export const WEIGHTS_NAME = "adapter_model.safetensors";

/** The weights' metadata key for the SHA-256 of the config they were saved with (save-load.ts). */
export const CONFIG_HASH_KEY = "peft_ts_config_sha256";

/**
 * Where an adapter's files go inside a saved folder: "" for "default", `<name>/` for
 * others, as PEFT's save_pretrained lays them out (adapter names are plain: checkAdapterName).
 */
export function adapterPath(name: string): string {
  return name === "default" ? "" : `${name}/`;
}

/** The bytes of an adapter's two files: the config, and the weights in chunks. */
export function adapterBytes(
  config: AdapterConfig,
  tensors: Map<string, Tensor>,
): { config: Uint8Array; weights: Uint8Array[] } {
  const json = new TextEncoder().encode(toSortedJson({ ...config.toJson(), inference_mode: true }));
  const weights = serializeSafetensors(tensors, { format: "pt", [CONFIG_HASH_KEY]: sha256(json) });
  return { config: json, weights };
}

/** Parses adapter_config.json's bytes into the config class its peft_type names. */
function parseAdapterConfig(
  path: string,
  bytes: Uint8Array,
  onWarning: (msg: string) => void,
): AdapterConfig {
  const json = parseJsonText(path, bytes);
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

/** An adapter's config and weights from a model's files, taken as they are. */
export function readAdapterFiles(
  files: ModelFiles,
  onWarning: (msg: string) => void = console.warn,
  withWeights = true,
): { config: AdapterConfig; tensors: Map<string, Tensor> } {
  const bytes = files.read(CONFIG_NAME, `${CONFIG_NAME} (not a PEFT adapter without it)`);
  const file = openWeights(files);
  try {
    return configAndWeights(files.describe(CONFIG_NAME), bytes, file, onWarning, withWeights);
  } finally {
    file.close();
  }
}

/** The config parsed and checked against its weights, and the weights when wanted. */
export function configAndWeights(
  configPath: string,
  bytes: Uint8Array,
  file: SafetensorsFile,
  onWarning: (msg: string) => void,
  withWeights: boolean,
): { config: AdapterConfig; tensors: Map<string, Tensor> } {
  const config = parseAdapterConfig(configPath, bytes, onWarning);
  checkRanks(configPath, config, file);
  return { config, tensors: withWeights ? file.loadAll() : new Map() };
}

/**
 * Every rank a config names is a dimension of some saved tensor (LoRA's A is [r, in],
 * VeRA saves λd [r]); a larger one cannot describe these weights, and allocating it first
 * could take minutes and gigabytes before the shapes disagree.
 */
function checkRanks(path: string, config: AdapterConfig, file: SafetensorsFile): void {
  let largest = 0;
  for (const k of file.keys()) for (const d of file.entry(k).shape) largest = Math.max(largest, d);
  const ranks: [string, number][] = [];
  // AdaLoRA ignores r: its layers start at init_r and its rank_pattern holds masks.
  if ("initR" in config) ranks.push(["init_r", config.initR]);
  else if ("r" in config && typeof config.r === "number") ranks.push(["r", config.r]);
  if ("rankPattern" in config && config.rankPattern !== null)
    for (const [k, v] of Object.entries(config.rankPattern))
      if (typeof v === "number") ranks.push([`rank_pattern["${k}"]`, v]);
  for (const [field, r] of ranks)
    if (r > largest)
      throw new FileFormatError(
        path,
        `${field} = ${r} cannot describe the saved weights: no tensor in ${WEIGHTS_NAME} has a dimension above ${largest}`,
      );
}

export function openWeights(files: ModelFiles): SafetensorsFile {
  if (!files.has(WEIGHTS_NAME)) {
    throw new FileNotFoundError(
      files.describe(WEIGHTS_NAME),
      files.has("adapter_model.bin")
        ? "only adapter_model.bin is present; peft-ts reads safetensors adapters only"
        : `no ${WEIGHTS_NAME} in the adapter directory`,
    );
  }
  return SafetensorsFile.openIn(files, WEIGHTS_NAME);
}
