import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { parseJsonText } from "../io/config.js";
import { DirectoryFiles } from "../io/files/directory.js";
import type { ModelFiles } from "../io/files/model-files.js";
import { processAlive } from "../io/process.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { serializeSafetensors } from "../io/safetensors/writer.js";
import type { Tensor } from "../tensor/tensor.js";
import { toSortedJson } from "./config.js";
import { isPeftType, PEFT_METHODS, PEFT_TYPES } from "./registry.js";
import type { AdapterConfig } from "./tuners/tuner.js";

export const CONFIG_NAME = "adapter_config.json";
export const WEIGHTS_NAME = "adapter_model.safetensors";

/**
 * An adapter is two files, and no rename replaces two files at once. So the weights carry
 * the SHA-256 of the config they were saved with (in their safetensors metadata, which
 * PEFT ignores), and a save goes: the new config staged under a hidden name, the weights
 * renamed into place, the staged config renamed into place. A reader that finds weights
 * whose config is not (yet) adapter_config.json takes the staged one, so it sees the old
 * pair or the new pair, never a mix, and a save killed at any point leaves one complete
 * adapter. A config edited by hand (no staged match) is used as it is.
 */
export const CONFIG_HASH_KEY = "peft_ts_config_sha256";

const STAGED = /^\.\.?adapter_(config\.json|model\.safetensors)\.(\d+)\.[^/]*\.(tmp|staged)$/;
let stagedCount = 0;

/** Steps of a save, for tests that kill a save at each of them. */
export type SaveStep = "config-staged" | "weights-written" | "config-written";
let saveHook: ((step: SaveStep, dir: string) => void) | null = null;
export function setSaveHook(hook: ((step: SaveStep, dir: string) => void) | null): void {
  saveHook = hook;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Hidden files of saves in `dir`, with the pid that wrote each. */
function stagedFiles(dir: string): { name: string; pid: number; kind: string }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const m = STAGED.exec(name);
    return m === null ? [] : [{ name, pid: Number(m[2]), kind: m[3] }];
  });
}

/** The staged config of an interrupted or running save whose hash is `hash`, or null. */
function stagedConfig(
  dir: string,
  hash: string,
): { path: string; bytes: Uint8Array; pid: number } | null {
  for (const f of stagedFiles(dir)) {
    if (f.kind !== "staged" || !f.name.startsWith(`.${CONFIG_NAME}.`)) continue;
    const path = join(dir, f.name);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch {
      continue; // renamed into place meanwhile
    }
    if (sha256(bytes) === hash) return { path, bytes, pid: f.pid };
  }
  return null;
}

/** Reads adapter_config.json into the config class its peft_type names. */
export function readAdapterConfig(
  dir: string | ModelFiles,
  onWarning: (msg: string) => void = console.warn,
): AdapterConfig {
  return readAdapter(dir, onWarning, false).config;
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

/** The bytes of an adapter's two files: the config, and the weights in chunks. */
export function adapterBytes(
  config: AdapterConfig,
  tensors: Map<string, Tensor>,
): { config: Uint8Array; weights: Uint8Array[] } {
  const json = new TextEncoder().encode(toSortedJson({ ...config.toJson(), inference_mode: true }));
  const weights = serializeSafetensors(tensors, { format: "pt", [CONFIG_HASH_KEY]: sha256(json) });
  return { config: json, weights };
}

/**
 * Writes adapter_config.json and adapter_model.safetensors into `dir` as one atomic save
 * (see CONFIG_HASH_KEY), first removing what killed saves of dead processes left behind.
 */
export function writeAdapter(
  dir: string,
  config: AdapterConfig,
  tensors: Map<string, Tensor>,
): void {
  mkdirSync(dir, { recursive: true });
  for (const f of stagedFiles(dir))
    if (!processAlive(f.pid)) rmSync(join(dir, f.name), { force: true });
  const bytes = adapterBytes(config, tensors);
  const staged = join(dir, `.${CONFIG_NAME}.${process.pid}.${stagedCount++}.staged`);
  writeFileAtomic(staged, [bytes.config]);
  saveHook?.("config-staged", dir);
  try {
    writeFileAtomic(join(dir, WEIGHTS_NAME), bytes.weights);
    saveHook?.("weights-written", dir);
    renameSync(staged, join(dir, CONFIG_NAME));
  } catch (e) {
    rmSync(staged, { force: true });
    throw e;
  }
  saveHook?.("config-written", dir);
}

/**
 * Reads an adapter's config and weights as one consistent pair (see CONFIG_HASH_KEY), from
 * a directory or from a model's files. The config is read before the weights are opened:
 * a save renames its weights before its config, so a config never belongs to weights older
 * than itself. Files in memory cannot change while they are read: they are taken as they
 * are, as a config edited by hand would be.
 */
export function readAdapter(
  source: string | ModelFiles,
  onWarning: (msg: string) => void = console.warn,
  withWeights = true,
): { config: AdapterConfig; tensors: Map<string, Tensor> } {
  if (typeof source !== "string" && !(source instanceof DirectoryFiles)) {
    const bytes = source.read(CONFIG_NAME, `${CONFIG_NAME} (not a PEFT adapter without it)`);
    const file = openWeights(source);
    try {
      return pair(source.describe(CONFIG_NAME), bytes, file, onWarning, withWeights);
    } finally {
      file.close();
    }
  }
  const dir = typeof source === "string" ? source : source.location;
  const configPath = join(dir, CONFIG_NAME);
  // The config and weights file of the previous attempt that did not match.
  let previous: { bytes: Uint8Array; weights: string | null } | null = null;
  for (;;) {
    const bytes = readConfigBytes(configPath);
    const file = openWeights(new DirectoryFiles(dir));
    try {
      const hash = file.metadata[CONFIG_HASH_KEY];
      let chosen = bytes;
      if (hash !== undefined && sha256(bytes) !== hash) {
        const staged = stagedConfig(dir, hash);
        if (staged !== null) {
          chosen = staged.bytes;
          if (!processAlive(staged.pid)) finishKilledSave(staged.path, configPath);
        } else if (
          previous === null ||
          !sameBytes(previous.bytes, bytes) ||
          previous.weights !== file.identity
        ) {
          // Renamed into place between our two reads: read again until it settles. A config
          // that stays the same, beside the same weights file, without a staged match was
          // edited by hand: use it. Equal config bytes alone do not show that: saves that
          // alternate between two configs bring the same bytes back beside newer weights.
          previous = { bytes, weights: file.identity };
          continue;
        }
      }
      return pair(configPath, chosen, file, onWarning, withWeights);
    } finally {
      file.close();
    }
  }
}

/** The config parsed and checked against its weights, and the weights when wanted. */
function pair(
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

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Puts a dead writer's staged config into place, so other readers (PEFT too) see the pair. */
function finishKilledSave(staged: string, configPath: string): void {
  try {
    renameSync(staged, configPath);
  } catch {
    // A read-only directory, or another reader finished it first: the pair was read either way.
  }
}

function readConfigBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new FileNotFoundError(path, `no ${CONFIG_NAME}: not a PEFT adapter directory`);
    throw e;
  }
}

function openWeights(files: ModelFiles): SafetensorsFile {
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
