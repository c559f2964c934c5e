import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { FileNotFoundError, ValueError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { DirectoryFiles, filesIn } from "../io/files/directory.js";
import type { ModelFiles } from "../io/files/model-files.js";
import { processAlive } from "../io/process.js";
import { sha256 } from "../io/sha256.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  adapterBytes,
  adapterPath,
  CONFIG_HASH_KEY,
  CONFIG_NAME,
  configAndWeights,
  openWeights,
  readAdapterFiles,
  WEIGHTS_NAME,
} from "./adapter-files.js";
import type { AdapterConfig } from "./tuners/tuner.js";

/**
 * Saving adapters to directories and reading them back, safely against crashes and
 * concurrent readers. An adapter is two files, and no rename replaces two files at once.
 * So the weights carry the SHA-256 of the config they were saved with (under
 * CONFIG_HASH_KEY in their safetensors metadata, which PEFT ignores), and a save goes: the
 * new config staged under a hidden name, the weights renamed into place, the staged
 * config renamed into place. A reader that finds weights whose config is not (yet)
 * adapter_config.json takes the staged one, so it sees the old pair or the new pair,
 * never a mix, and a save killed at any point leaves one complete adapter. A config
 * edited by hand (no staged match) is used as it is.
 */

const STAGED = /^\.\.?adapter_(config\.json|model\.safetensors)\.(\d+)\.[^/]*\.(tmp|staged)$/;
let stagedCount = 0;

/** Steps of a save, for tests that kill a save at each of them. */
export type SaveStep = "config-staged" | "weights-written" | "config-written";
let saveHook: ((step: SaveStep, dir: string) => void) | null = null;
export function setSaveHook(hook: ((step: SaveStep, dir: string) => void) | null): void {
  saveHook = hook;
}

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

/** Where savePretrained puts an adapter: "default" in `dir`, others in `dir/<name>`. */
export function adapterDir(dir: string, name: string): string {
  if (name === "default") return dir;
  const target = join(dir, adapterPath(name));
  const inside = relative(resolve(dir), resolve(target));
  if (inside === "" || inside.startsWith("..") || isAbsolute(inside))
    throw new ValueError(`savePretrained: adapter "${name}" would be written outside ${dir}`);
  return target;
}

/** An adapter's weights file, as messages name it. */
export function weightsName(source: string | ModelFiles): string {
  return typeof source === "string" ? join(source, WEIGHTS_NAME) : source.describe(WEIGHTS_NAME);
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
  const files = filesIn(source);
  if (!(files instanceof DirectoryFiles)) return readAdapterFiles(files, onWarning, withWeights);
  const dir = files.location;
  const configPath = join(dir, CONFIG_NAME);
  // The config and weights file of the previous attempt that did not match.
  let previous: { bytes: Uint8Array; weights: string | null } | null = null;
  for (;;) {
    const bytes = readConfigBytes(configPath);
    const file = openWeights(files);
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
      return configAndWeights(configPath, chosen, file, onWarning, withWeights);
    } finally {
      file.close();
    }
  }
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
