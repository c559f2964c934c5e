import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixturePath, reference } from "../../test/helpers/fixtures.js";
import { tinyTokenizerFiles } from "../../test/helpers/tiny-tokenizer.js";
import { FileFormatError, ValueError } from "../errors.js";
import { Tokenizer } from "../io/tokenizer.js";
import { getPeftModel } from "../peft/peft-model.js";
import { slice } from "../tensor/ops/layout.js";
import { Generator } from "../tensor/random.js";
import { Tensor } from "../tensor/tensor.js";
import { AutoModelForCausalLM } from "./auto.js";
import { generate } from "./generate.js";
import { parseGenerationConfig } from "./generation-config.js";
import { KVCache } from "./kv-cache.js";
import type { CausalLanguageModel, CausalLMInputs, CausalLMOutput } from "./output.js";
import { StopStringMatcher } from "./stop-strings.js";

const fixture = (name: string) => fixturePath(`models/${name}`);
const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A copy of a fixture model with generation_config.json replaced (or removed: null). */
function withGenerationConfig(name: string, json: unknown | null): string {
  const dir = mkdtempSync(join(tmpdir(), "peft-gencfg-"));
  temps.push(dir);
  cpSync(fixture(name), dir, { recursive: true });
  if (json === null) rmSync(join(dir, "generation_config.json"));
  else
    writeFileSync(
      join(dir, "generation_config.json"),
      typeof json === "string" ? json : JSON.stringify(json),
    );
  return dir;
}

function tinyTokenizer(): Tokenizer {
  const dir = mkdtempSync(join(tmpdir(), "peft-tok-"));
  temps.push(dir);
  const { tokenizer, config } = tinyTokenizerFiles();
  writeFileSync(join(dir, "config.json"), "{}");
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return Tokenizer.fromPretrained(dir);
}

/** A model that emits scripts[row][step] at each step (greedy), whatever it is fed. */
class ScriptedModel implements CausalLanguageModel {
  training = false;
  calls = 0;
  constructor(
    readonly scripts: number[][],
    readonly vocab: number,
  ) {}
  forward(inputs: CausalLMInputs): CausalLMOutput {
    const [b] = inputs.inputIds!.shape;
    const step = this.calls++;
    const logits = new Float32Array(b * this.vocab);
    for (let r = 0; r < b; r++) logits[r * this.vocab + (this.scripts[r][step] ?? 0)] = 1;
    return { logits: Tensor.from(logits, [b, 1, this.vocab], "float32") };
  }
  newCache(): KVCache {
    return new KVCache(0);
  }
  train(mode = true): this {
    this.training = mode;
    return this;
  }
}

const ref = reference("tiny-llama");
const prompt = slice(ref.get("input_ids")!, 0, 0, 1);
/** transformers' 8 greedy tokens after the prompt; no EOS (2) among them. */
const greedy = (ref.get("generated_ids")!.toArray() as number[][])[0].slice(16);

describe("generation_config.json", () => {
  it("is read at load: tiny-llama's bos 1 / eos 2; tiny-qwen2's file sets none", () => {
    expect(AutoModelForCausalLM.fromPretrained(fixture("tiny-llama")).generationConfig).toEqual({
      bosTokenId: 1,
      eosTokenId: 2,
    });
    expect(AutoModelForCausalLM.fromPretrained(fixture("tiny-qwen2")).generationConfig).toEqual({});
  });

  it("without the file, eos/bos/pad come from config.json, as transformers derives them", () => {
    const dir = withGenerationConfig("tiny-gpt2", null);
    expect(AutoModelForCausalLM.fromPretrained(dir).generationConfig).toEqual({
      bosTokenId: 50256,
      eosTokenId: 50256,
    });
  });

  it("its eos list stops generation without eosTokenId; explicit options override it", () => {
    const dir = withGenerationConfig("tiny-llama", {
      eos_token_id: [200, greedy[3], 201],
      pad_token_id: 7,
      some_future_field: { anything: true },
    });
    const m = AutoModelForCausalLM.fromPretrained(dir);
    expect(m.generationConfig.eosTokenId).toEqual([200, greedy[3], 201]);
    const row = (t: Tensor) => (t.toArray() as number[][])[0].slice(16);
    expect(row(m.generate(prompt, { maxNewTokens: 8 }))).toEqual(greedy.slice(0, 4));
    // A batch: the stopped row is padded with the config's pad id.
    const two = Tensor.from([
      (prompt.toArray() as number[][])[0],
      (prompt.toArray() as number[][])[0].map((t) => (t + 1) % 256),
    ]);
    const out = m.generate(two, { maxNewTokens: 8 }).toArray() as number[][];
    // Row 1 (measured: 220, 45, 103, 106, 114, 228, 203, 161) meets none of the eos ids.
    expect(out[1].length).toBe(24);
    expect(out[0].slice(16)).toEqual([...greedy.slice(0, 4), 7, 7, 7, 7]);
    expect(row(m.generate(prompt, { maxNewTokens: 8, eosTokenId: null }))).toEqual(greedy);
    expect(row(m.generate(prompt, { maxNewTokens: 8, eosTokenId: greedy[1] }))).toEqual(
      greedy.slice(0, 2),
    );
    // PeftModel.generate uses the base model's generation config (a fresh LoRA adds zero).
    const p = getPeftModel(AutoModelForCausalLM.fromPretrained(dir), {
      peftType: "LORA",
      r: 4,
      targetModules: ["q_proj", "v_proj"],
    });
    expect(row(p.generate(prompt, { maxNewTokens: 8 }))).toEqual(greedy.slice(0, 4));
  });

  it("max_new_tokens, then max_length (prompt + new), set the length unless maxNewTokens is given", () => {
    const m = AutoModelForCausalLM.fromPretrained(
      withGenerationConfig("tiny-llama", { max_new_tokens: 5, max_length: 18 }),
    );
    expect(m.generate(prompt).shape).toEqual([1, 21]);
    expect(m.generate(prompt, { maxNewTokens: 3 }).shape).toEqual([1, 19]);
    expect(m.generate(prompt, { maxLength: 19 }).shape).toEqual([1, 19]);
    const byLength = AutoModelForCausalLM.fromPretrained(
      withGenerationConfig("tiny-llama", { max_length: 18 }),
    );
    expect(byLength.generate(prompt).toArray()).toEqual([
      [...(prompt.toArray() as number[][])[0], ...greedy.slice(0, 2)],
    ]);
    expect(() => byLength.generate(prompt, { maxLength: 16 })).toThrow(/16 tokens.*maxLength.*16/);
    // No generation config at all: 20 new tokens, as before.
    const bare = AutoModelForCausalLM.fromPretrained(fixture("tiny-qwen2"));
    expect(bare.generate(prompt).shape).toEqual([1, 36]);
  });

  it("sampling settings come from the file; greedy files may carry temperature 0", () => {
    const sampled = AutoModelForCausalLM.fromPretrained(
      withGenerationConfig("tiny-llama", { do_sample: true, temperature: 0.7, top_p: 0.9 }),
    );
    const plain = AutoModelForCausalLM.fromPretrained(fixture("tiny-llama"));
    const explicit = plain.generate(prompt, {
      maxNewTokens: 6,
      doSample: true,
      temperature: 0.7,
      topP: 0.9,
      seed: 5,
    });
    expect(sampled.generate(prompt, { maxNewTokens: 6, seed: 5 }).toArray()).toEqual(
      explicit.toArray(),
    );
    expect(
      sampled.generate(prompt, { maxNewTokens: 8, doSample: false }).toArray() as number[][],
    ).toEqual([[...(prompt.toArray() as number[][])[0], ...greedy]]);
    const greedyZero = AutoModelForCausalLM.fromPretrained(
      withGenerationConfig("tiny-llama", { do_sample: false, temperature: 0, top_p: 0 }),
    );
    expect((greedyZero.generate(prompt, { maxNewTokens: 8 }).toArray() as number[][])[0]).toEqual([
      ...(prompt.toArray() as number[][])[0],
      ...greedy,
    ]);
    expect(() => plain.generate(prompt, { temperature: 0 })).toThrow(ValueError);
  });

  it("a field of the wrong type is a FileFormatError naming the file and the field", () => {
    for (const [field, value] of [
      ["eos_token_id", "2"],
      ["eos_token_id", [2, 2.5]],
      ["pad_token_id", 1.5],
      ["max_new_tokens", -1],
      ["max_length", "20"],
      ["do_sample", "yes"],
      ["temperature", "hot"],
      ["top_k", 0.5],
      ["top_p", 2],
      ["repetition_penalty", 0],
      ["stop_strings", [""]],
    ] as const) {
      const dir = withGenerationConfig("tiny-llama", { [field]: value });
      let err: unknown;
      try {
        AutoModelForCausalLM.fromPretrained(dir);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(FileFormatError);
      expect((err as FileFormatError).file).toBe(join(dir, "generation_config.json"));
      expect((err as Error).message).toContain(`"${field}"`);
    }
    expect(() =>
      AutoModelForCausalLM.fromPretrained(withGenerationConfig("tiny-llama", "[1]")),
    ).toThrow(FileFormatError);
    expect(() =>
      AutoModelForCausalLM.fromPretrained(withGenerationConfig("tiny-llama", "{")),
    ).toThrow(FileFormatError);
    // null means unset, as in files transformers writes.
    expect(
      parseGenerationConfig("g.json", { pad_token_id: null, eos_token_id: 3, stop_strings: "x" }),
    ).toEqual({ eosTokenId: 3, stopStrings: ["x"] });
  });
});

describe("stop strings", () => {
  const tok = tinyTokenizer();
  const ids = (text: string) => tok.encode(text);
  const vocab = 268;

  it("stop a row when its new text contains one, across two tokens, keeping the completing token", () => {
    const script = ids("hello world and more");
    // "hello" and "Ġworld" are single tokens: "o w" spans them.
    expect(script.slice(0, 2)).toEqual([tok.tokenId("hello"), tok.tokenId("Ġworld")]);
    const model = new ScriptedModel([script], vocab);
    const steps: number[][] = [];
    let ended = 0;
    const out = generate(model, Tensor.from([[5, 6]]), {
      maxNewTokens: 20,
      stopStrings: ["o w"],
      tokenizer: tok,
      eosTokenId: null,
      streamer: { put: (t) => steps.push(t), end: () => ended++ },
    });
    expect((out.toArray() as number[][])[0]).toEqual([5, 6, ...script.slice(0, 2)]);
    expect(steps.length).toBe(2);
    expect(ended).toBe(1);
  });

  it("rows stop at different steps and are padded after; the prompt's text does not count", () => {
    const a = ids("abc STOP xyz tail");
    const b = ids("a much longer line then STOP, and more");
    const c = ids("never stops at all in this row......");
    const model = new ScriptedModel([a, b, c], vocab);
    // The prompt decodes to "STOP" itself: only new tokens are matched.
    const promptIds = ids("STOP");
    const out = generate(model, Tensor.from([promptIds, promptIds, promptIds]), {
      maxNewTokens: 30,
      stopStrings: ["STOP", "zzz"],
      tokenizer: tok,
      padTokenId: 0,
      eosTokenId: null,
    }).toArray() as number[][];
    const lenA = ids("abc STOP").length;
    const lenB = ids("a much longer line then STOP").length;
    expect(out[0].length).toBe(promptIds.length + 30);
    expect(out[0].slice(promptIds.length)).toEqual([
      ...a.slice(0, lenA),
      ...new Array(30 - lenA).fill(0),
    ]);
    expect(out[1].slice(promptIds.length)).toEqual([
      ...b.slice(0, lenB),
      ...new Array(30 - lenB).fill(0),
    ]);
    expect(out[2].slice(promptIds.length)).toEqual(c.slice(0, 30));
    expect(tok.decode(out[0].slice(promptIds.length, promptIds.length + lenA))).toBe("abc STOP");
  });

  it("stop all rows early, and combine with EOS", () => {
    const model = new ScriptedModel([ids("one END"), [...ids("two"), 2, ...ids("END")]], vocab);
    const out = generate(model, Tensor.from([[1], [1]]), {
      maxNewTokens: 50,
      stopStrings: ["END"],
      tokenizer: tok,
      eosTokenId: 2,
    }).toArray() as number[][];
    expect(out[0]).toEqual([1, ...ids("one END")]);
    expect(out[1]).toEqual([1, ...ids("two"), 2, 2, 2, 2]);
    expect(model.calls).toBe(ids("one END").length);
  });

  it("need a tokenizer (ValueError), and must not be empty", () => {
    const model = new ScriptedModel([[3, 4]], vocab);
    expect(() => generate(model, Tensor.from([[1]]), { stopStrings: ["x"] })).toThrow(ValueError);
    expect(() =>
      generate(model, Tensor.from([[1]]), { stopStrings: [""], tokenizer: tok }),
    ).toThrow(ValueError);
    // stop_strings of a generation config are used when a tokenizer is given.
    const withConfig = Object.assign(new ScriptedModel([ids("ab|cd")], vocab), {
      generationConfig: { stopStrings: ["|"] },
    });
    const out = generate(withConfig, Tensor.from([[1]]), { tokenizer: tok, eosTokenId: null });
    expect((out.toArray() as number[][])[0]).toEqual([1, ...ids("ab|")]);
  });

  it("the tail-window matcher finds the same first stop step as decoding every new token", () => {
    const rng = new Generator(11);
    const stops = ["ö", "wörld", "\n\n", "<|eos|>h", "héllo, w", "zzzzzzzzzzzzzzzzz"];
    const matcher = new StopStringMatcher(stops, tok);
    // Ids over the whole vocabulary: specials, every byte (so split UTF-8 characters) and merges.
    const pool = [...ids("héllo, wörld\n\nzzzz hello world"), 0, 1, 2, 200, 250, 260, 267];
    let found = 0;
    for (let trial = 0; trial < 200; trial++) {
      const tokens: number[] = [];
      let naive = -1;
      let windowed = -1;
      for (let t = 0; t < 60 && (naive < 0 || windowed < 0); t++) {
        tokens.push(pool[Math.floor(rng.nextFloat53() * pool.length)]);
        const text = tok.decode(tokens);
        if (naive < 0 && stops.some((s) => text.includes(s))) naive = t;
        if (windowed < 0 && matcher.matches(tokens)) windowed = t;
      }
      expect(windowed, `trial ${trial}: ${tokens}`).toBe(naive);
      if (naive >= 0) found++;
    }
    expect(found).toBeGreaterThan(50);
  });

  it("find a stop string in tiny-llama's greedy output", () => {
    const m = AutoModelForCausalLM.fromPretrained(fixture("tiny-llama"));
    const text = tok.decode(greedy);
    // The text of the 5th and 6th new tokens (each one byte token here).
    const stopAt = 5;
    const needle = tok.decode(greedy.slice(stopAt - 1, stopAt + 1));
    const first = greedy.findIndex((_, i) => tok.decode(greedy.slice(0, i + 1)).includes(needle));
    expect(text).toContain(needle);
    const out = m.generate(prompt, {
      maxNewTokens: 8,
      stopStrings: [needle],
      tokenizer: tok,
      eosTokenId: null,
    });
    expect((out.toArray() as number[][])[0].slice(16)).toEqual(greedy.slice(0, first + 1));
  });
});

describe("the model's context", () => {
  const gpt2 = AutoModelForCausalLM.fromPretrained(fixture("tiny-gpt2"));

  it("GPT-2's n_positions (128 in the fixture) is a hard limit; Llama's 128 is not", () => {
    expect(gpt2.maxPositions).toBe(128);
    expect(gpt2.contextLength).toBe(128);
    const llama = AutoModelForCausalLM.fromPretrained(fixture("tiny-llama"));
    expect(llama.maxPositions).toBeNull();
    expect(llama.contextLength).toBe(128);
    const warnings: string[] = [];
    const out = llama.generate(Tensor.from([new Array(120).fill(5)]), {
      maxNewTokens: 16,
      eosTokenId: null,
      onWarning: (w) => warnings.push(w),
    });
    expect(out.shape).toEqual([1, 136]);
    expect(warnings).toEqual([]);
  });

  it("generation on tiny-gpt2 stops at exactly n_positions tokens, warns once and ends the streamer", () => {
    const warnings: string[] = [];
    let ended = 0;
    let steps = 0;
    const out = gpt2.generate(prompt, {
      maxNewTokens: 500,
      onWarning: (w) => warnings.push(w),
      streamer: { put: () => steps++, end: () => ended++ },
    });
    expect(out.shape).toEqual([1, 128]);
    expect(steps).toBe(112);
    expect(ended).toBe(1);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/context of 128 tokens/);
    // The same tokens as a run that stays inside the context.
    const inside = gpt2.generate(prompt, { maxNewTokens: 112, onWarning: () => {} });
    expect(out.toArray()).toEqual(inside.toArray());
    expect(warnings.length).toBe(1);
  });

  it("counts real tokens of left-padded rows, and a full-length prompt gives nothing new", () => {
    const ids = (prompt.toArray() as number[][])[0];
    const batch = Tensor.from([ids, [0, 0, 0, 0, 0, 0, ...ids.slice(0, 10)]]);
    const mask = Tensor.from([
      new Array(16).fill(1),
      [...new Array(6).fill(0), ...new Array(10).fill(1)],
    ]);
    const warnings: string[] = [];
    const out = gpt2.generate(batch, {
      maxNewTokens: 500,
      attentionMask: mask,
      onWarning: (w) => warnings.push(w),
    });
    expect(out.shape).toEqual([2, 128]);
    expect(warnings.length).toBe(1);
    const full = Tensor.from([Array.from({ length: 128 }, (_, i) => (i * 7) % 256)]);
    const same = gpt2.generate(full, { maxNewTokens: 4, onWarning: (w) => warnings.push(w) });
    expect(same.toArray()).toEqual(full.toArray());
    expect(warnings.length).toBe(2);
  });

  it("a prompt longer than n_positions is a ValueError naming both numbers", () => {
    const long = Tensor.from([new Array(129).fill(3)]);
    expect(() => gpt2.generate(long, { maxNewTokens: 1 })).toThrow(ValueError);
    expect(() => gpt2.generate(long, { maxNewTokens: 1 })).toThrow(/129 tokens.*128 tokens/);
  });
});
