import { FileFormatError } from "../errors.js";
import { type ConfigReader, readJsonIn } from "../io/config.js";
import { filesIn } from "../io/files/directory.js";
import type { ModelFiles } from "../io/files/model-files.js";

/**
 * The generation defaults of a model, as transformers' GenerationConfig keeps them
 * (camelCase here, snake_case in generation_config.json). A field that is undefined was
 * not set; generate() then uses its own default. Options passed to generate() win.
 */
export interface GenerationConfig {
  /** One id or several: a row stops at any of them. */
  eosTokenId?: number | number[];
  padTokenId?: number;
  bosTokenId?: number;
  maxNewTokens?: number;
  /** Prompt + new tokens; used when maxNewTokens is not set. */
  maxLength?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** Used by generate() only when it is given a tokenizer. */
  stopStrings?: string[];
}

/**
 * Reads the generation fields of a parsed JSON object (generation_config.json, or a
 * config.json when that file is absent). null counts as not set, unknown fields are
 * ignored, and a field of the wrong type is a FileFormatError naming the file and field.
 */
export function parseGenerationConfig(file: string, json: unknown): GenerationConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new FileFormatError(
      file,
      `expected a JSON object, found ${Array.isArray(json) ? "an array" : typeof json}`,
    );
  }
  const raw = json as Record<string, unknown>;
  const fail = (key: string, expected: string): never => {
    throw new FileFormatError(
      file,
      `field "${key}" should be ${expected}, found ${JSON.stringify(raw[key])}`,
    );
  };
  const get = (key: string): unknown => (Object.hasOwn(raw, key) ? raw[key] : undefined);
  const int = (key: string, min: number): number | undefined => {
    const v = get(key);
    if (v == null) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < min)
      fail(key, min === -Infinity ? "an integer" : `an integer >= ${min}`);
    return v as number;
  };
  const num = (key: string, check: (v: number) => boolean, expected: string) => {
    const v = get(key);
    if (v == null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) fail(key, expected);
    return v as number;
  };
  const g: GenerationConfig = {};
  const eos = get("eos_token_id");
  if (Array.isArray(eos)) {
    if (!eos.every((e) => Number.isSafeInteger(e)))
      fail("eos_token_id", "an integer or a list of integers");
    g.eosTokenId = [...(eos as number[])];
  } else if (eos != null) {
    if (!Number.isSafeInteger(eos)) fail("eos_token_id", "an integer or a list of integers");
    g.eosTokenId = eos as number;
  }
  // Token ids are not bounded below: some checkpoints say -1 for "none".
  const pad = int("pad_token_id", -Infinity);
  if (pad !== undefined) g.padTokenId = pad;
  const bos = int("bos_token_id", -Infinity);
  if (bos !== undefined) g.bosTokenId = bos;
  const maxNew = int("max_new_tokens", 0);
  if (maxNew !== undefined) g.maxNewTokens = maxNew;
  const maxLength = int("max_length", 0);
  if (maxLength !== undefined) g.maxLength = maxLength;
  const doSample = get("do_sample");
  if (doSample != null) {
    if (typeof doSample !== "boolean") fail("do_sample", "true or false");
    g.doSample = doSample as boolean;
  }
  // Greedy configs may carry temperature 0: it is only checked (> 0) when sampling.
  const temperature = num("temperature", (v) => v >= 0, "a number >= 0");
  if (temperature !== undefined) g.temperature = temperature;
  const topK = int("top_k", 0);
  if (topK !== undefined) g.topK = topK;
  const topP = num("top_p", (v) => v >= 0 && v <= 1, "a number in [0, 1]");
  if (topP !== undefined) g.topP = topP;
  const penalty = num("repetition_penalty", (v) => v > 0, "a number > 0");
  if (penalty !== undefined) g.repetitionPenalty = penalty;
  const stop = get("stop_strings");
  if (typeof stop === "string") g.stopStrings = [stop];
  else if (Array.isArray(stop)) {
    if (!stop.every((s) => typeof s === "string" && s.length > 0))
      fail("stop_strings", "a string or a list of non-empty strings");
    g.stopStrings = [...(stop as string[])];
  } else if (stop != null) fail("stop_strings", "a string or a list of non-empty strings");
  if (g.stopStrings?.includes("")) fail("stop_strings", "a string or a list of non-empty strings");
  return g;
}

/**
 * A model directory's generation defaults, as transformers loads them: generation_config.json
 * when present; otherwise the same fields of config.json (eos, bos and pad ids, and any
 * generation options an older config.json carries).
 */
export function loadGenerationConfig(
  dirOrFiles: string | ModelFiles,
  config: ConfigReader,
): GenerationConfig {
  const files = filesIn(dirOrFiles);
  const name = "generation_config.json";
  if (files.has(name)) return parseGenerationConfig(files.describe(name), readJsonIn(files, name));
  return parseGenerationConfig(config.file, config.raw);
}
