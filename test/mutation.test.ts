import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PeftError } from "../src/errors.js";
import { AutoModelForCausalLM, AutoModelForSequenceClassification } from "../src/models/auto.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { Generator } from "../src/tensor/random.js";
import { Tensor } from "../src/tensor/tensor.js";

// Seeded: a failure names its seed and case, and PEFT_MUTATION_SEED replays (or varies) a run.
const SEED = Number(process.env.PEFT_MUTATION_SEED ?? 20261206);
const CASES = Number(process.env.PEFT_MUTATION_CASES ?? 1000);
/** Per file: loading a tiny model or adapter takes milliseconds; a hang or a blow-up does not. */
const BUDGET_MS = 2000;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** Values a careless or hostile edit puts in a JSON file. */
const VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  2,
  1.5,
  0.1,
  -0.5,
  1e9,
  1e18,
  -1e9,
  2 ** 31,
  2 ** 53,
  1e308,
  "",
  "x",
  "float16",
  "bfloat16",
  "nf4",
  "int8",
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
  "../x",
  ".",
  "(.*)*Z",
  "(a|a)*(a|a)*$",
  "[",
  ".*q_proj",
  "all-linear",
  "q_proj",
  "a".repeat(10_000),
  [],
  [1],
  [0, 1],
  [-1],
  ["a"],
  ["q_proj", 1],
  [[0, 1]],
  {},
  { a: 1 },
  { q_proj: 2 },
  { "(.*)*(.*)*Z": 4 },
  { type: "linear", factor: 2 },
  JSON.parse('{"__proto__": {"r": 1}}'),
  "LORA",
  "VERA",
  "IA3",
  "gaussian",
  "pissa",
  "none",
  "all",
];

/** Keys a file might gain: each changes how a model or adapter is built. */
const CONFIG_KEYS = [
  "rope_scaling",
  "quantization_config",
  "tie_word_embeddings",
  "head_dim",
  "sliding_window",
  "use_sliding_window",
  "torch_dtype",
  "n_positions",
  "layer_norm_epsilon",
];
const ADAPTER_KEYS = [
  "layer_replication",
  "rank_pattern",
  "alpha_pattern",
  "exclude_modules",
  "layers_pattern",
  "modules_to_save",
  "layers_to_transform",
  "use_dora",
  "use_rslora",
  "init_lora_weights",
  "peft_type",
];

type Json = unknown;
type Path = (string | number)[];

/** Every object or array in `v` with its path, to depth 3 (nested sections get edited too). */
function containers(v: Json, path: Path = [], out: Path[] = []): Path[] {
  if (typeof v !== "object" || v === null || path.length > 3) return out;
  out.push(path);
  for (const [k, x] of Object.entries(v)) containers(x, [...path, Array.isArray(v) ? +k : k], out);
  return out;
}

function at(v: Json, path: Path): Record<string | number, Json> {
  let x = v as Record<string | number, Json>;
  for (const k of path) x = x[k] as Record<string | number, Json>;
  return x;
}

/** 1-3 edits: delete a key, set a key (existing or new) to a strange value. */
function mutate(g: Generator, json: Json, extraKeys: string[]): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[g.nextUint32() % xs.length];
  const edits: string[] = [];
  const n = 1 + (g.nextUint32() % 3);
  for (let i = 0; i < n; i++) {
    const path = pick(containers(json));
    const target = at(json, path);
    const keys = Object.keys(target);
    // In an array: an element or one past the end; in an object: a key it has or a new one.
    const key = Array.isArray(target)
      ? g.nextUint32() % (target.length + 1)
      : (path.length === 0 && g.nextUint32() % 3 === 0) || keys.length === 0
        ? pick(extraKeys)
        : pick(keys);
    const where = [...path, key].join(".");
    if (g.nextUint32() % 4 === 0 && !Array.isArray(target)) {
      delete target[key];
      edits.push(`delete ${where}`);
    } else {
      const value = structuredClone(pick(VALUES));
      // An own property even for "__proto__", as JSON.parse makes it.
      Object.defineProperty(target, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      edits.push(`${where} = ${JSON.stringify(value)?.slice(0, 40)}`);
    }
  }
  return edits;
}

interface Outcome {
  loaded: number;
  refused: number;
  raw: string[];
  slowest: number;
}

/**
 * Runs `cases` mutations of `file` in copies of `sources`: each load must succeed (and then
 * run) or throw a PeftError, within the budget. Raw errors are collected with the edits that
 * caused them.
 */
function trial(
  name: string,
  sources: string[],
  file: string,
  extraKeys: string[],
  load: (dir: string, source: string) => void,
): Outcome {
  const g = new Generator(SEED ^ name.length);
  const root = mkdtempSync(join(tmpdir(), `peft-mutation-${name}-`));
  roots.push(root);
  const dirs = sources.map((s, i) => {
    const dir = join(root, `${i}`);
    cpSync(s, dir, { recursive: true });
    return { source: s, dir, original: readFileSync(join(s, file), "utf8") };
  });
  const out: Outcome = { loaded: 0, refused: 0, raw: [], slowest: 0 };
  for (let k = 0; k < CASES; k++) {
    const { source, dir, original } = dirs[g.nextUint32() % dirs.length];
    const json = JSON.parse(original);
    const edits = mutate(g, json, extraKeys);
    writeFileSync(join(dir, file), JSON.stringify(json));
    const t0 = performance.now();
    try {
      load(dir, source);
      out.loaded++;
    } catch (e) {
      if (e instanceof PeftError) out.refused++;
      else
        out.raw.push(
          `case ${k} (${source.split("/").at(-1)}: ${edits.join("; ")}): ${(e as Error).constructor.name}: ${(e as Error).message.slice(0, 160)}`,
        );
    }
    const ms = performance.now() - t0;
    out.slowest = Math.max(out.slowest, ms);
    if (ms > BUDGET_MS) out.raw.push(`case ${k} (${edits.join("; ")}) took ${ms.toFixed(0)} ms`);
  }
  return out;
}

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const ids = (vocab: number) =>
  Tensor.from(
    BigInt64Array.from([1, 2, 3, 4], (x) => BigInt(x % vocab)),
    [1, 4],
  );

describe(`mutated files (seed ${SEED}, ${CASES} each)`, () => {
  it("config.json: every mutation loads and runs, or is refused with a typed error", () => {
    const models = ["tiny-llama", "tiny-gpt2", "tiny-qwen2", "tiny-bert-cls", "tiny-llama-bnb-nf4"];
    const out = trial(
      "config",
      models.map((m) => `${FIXTURES}models/${m}`),
      "config.json",
      CONFIG_KEYS,
      (dir, source) => {
        const quiet = { onWarning: () => {} };
        const model = source.endsWith("bert-cls")
          ? AutoModelForSequenceClassification.fromPretrained(dir, quiet)
          : AutoModelForCausalLM.fromPretrained(dir, quiet);
        model.forward({ inputIds: ids(200) });
      },
    );
    console.log(`config.json: ${JSON.stringify(out)}`);
    expect(out.raw).toEqual([]);
    // The mutations reach both outcomes: neither everything refused nor everything ignored.
    expect(out.loaded).toBeGreaterThan(CASES / 10);
    expect(out.refused).toBeGreaterThan(CASES / 10);
  }, 120_000);

  it("adapter_config.json: every mutation loads and runs, or is refused with a typed error", () => {
    const base = AutoModelForCausalLM.fromPretrained(`${FIXTURES}models/tiny-llama`);
    const adapters = ["llama-lora", "llama-vera", "llama-dora", "llama-lora-rslora-all-linear"];
    const out = trial(
      "adapter",
      adapters.map((a) => `${FIXTURES}adapters/${a}`),
      "adapter_config.json",
      ADAPTER_KEYS,
      (dir) => {
        const peft = PeftModel.fromPretrained(base.deepCopy(), dir, { onWarning: () => {} });
        peft.forward({ inputIds: ids(256) });
      },
    );
    console.log(`adapter_config.json: ${JSON.stringify(out)}`);
    expect(out.raw).toEqual([]);
    expect(out.loaded).toBeGreaterThan(CASES / 10);
    expect(out.refused).toBeGreaterThan(CASES / 10);
  }, 120_000);
});
