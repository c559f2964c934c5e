import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tinyTokenizerFiles } from "../../test/helpers/tiny-tokenizer.js";
import { FileFormatError, PeftError, ValueError } from "../errors.js";
import { findNestedQuantifier } from "./regex-safety.js";
import { Tokenizer } from "./tokenizer.js";

function withTemplate(template: string): Tokenizer {
  const { tokenizer, config } = tinyTokenizerFiles();
  return new Tokenizer(tokenizer, { ...config, chat_template: template });
}

const messages = [
  { role: "user", content: "hi" },
  { role: "assistant", content: "hello" },
];

describe("chat templates", () => {
  it("turn raise_exception() into a ValueError with the template's message", () => {
    const tok = withTemplate(
      "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{{ m.content }}{% endfor %}",
    );
    expect(tok.applyChatTemplate(messages)).toBe("hihello");
    const swapped = [messages[1], messages[0]];
    expect(() => tok.applyChatTemplate(swapped)).toThrow(ValueError);
    expect(() => tok.applyChatTemplate(swapped, { where: "data.jsonl: line 5" })).toThrow(
      "data.jsonl: line 5: the chat template in tokenizer_config.json refused the conversation: Conversation roles must alternate user/assistant/user/assistant/...",
    );
  });

  it("report syntax and render errors as FileFormatErrors naming tokenizer_config.json", () => {
    const unclosed = withTemplate("{% for m in messages %}{{ m.content }}");
    expect(() => unclosed.applyChatTemplate(messages)).toThrow(FileFormatError);
    expect(() => unclosed.applyChatTemplate(messages)).toThrow(
      /^tokenizer_config\.json: chat_template cannot be parsed: /,
    );
    const render = withTemplate("{{ messages[0].content | no_such_filter }}");
    expect(() => render.applyChatTemplate(messages, { where: "train.jsonl: line 2" })).toThrow(
      /^tokenizer_config\.json: chat_template failed to render for train\.jsonl: line 2: .*no_such_filter/,
    );
    // A directory's tokenizer names its own tokenizer_config.json.
    const dir = mkdtempSync(join(tmpdir(), "peft-tpl-"));
    const { tokenizer, config } = tinyTokenizerFiles();
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ ...config, chat_template: "{% if %}" }),
    );
    writeFileSync(join(dir, "config.json"), "{}");
    expect(() => Tokenizer.fromPretrained(dir).applyChatTemplate(messages)).toThrow(
      `${join(dir, "tokenizer_config.json")}: chat_template cannot be parsed`,
    );
  });

  it("bound a template's work and output", () => {
    const cases: [string, RegExp][] = [
      ["{% for i in range(1000000000) %}x{% endfor %}", /range\(1000000000\) would build/],
      [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        /more than \d+ evaluation steps/,
      ],
      [
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        /a string of \d+ characters/,
      ],
      [
        "{% set ns = namespace(a=[1]) %}{% for i in range(64) %}{% set ns.a = ns.a + ns.a %}{% endfor %}",
        /a list of \d+ items/,
      ],
      ["{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", /chat_template (stopped|failed)/],
      ["{{ messages | tojson(indent=900000000) }}", /chat_template (stopped|failed)/],
    ];
    for (const [template, error] of cases) {
      const t0 = performance.now();
      const tok = withTemplate(template);
      expect(() => tok.applyChatTemplate(messages)).toThrow(FileFormatError);
      expect(() => tok.applyChatTemplate(messages)).toThrow(error);
      expect(performance.now() - t0).toBeLessThan(3000);
    }
    // Real templates on long conversations stay far inside the bounds.
    const chatml = withTemplate(
      "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
    );
    const long = Array.from({ length: 2000 }, (_, i) => ({
      role: i % 2 === 0 ? "user" : "assistant",
      content: "hello there ".repeat(i % 7 === 0 ? 5000 : 20),
    }));
    expect(chatml.applyChatTemplate(long, { addGenerationPrompt: true }).length).toBeGreaterThan(
      1_000_000,
    );
  });
});

const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
const LLAMA3 = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2 = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const CL100K = String.raw`'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`;
const O200K = String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const DEEPSEEK =
  String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` +
  "`" +
  String.raw`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** The tiny tokenizer with a Split pre-tokenizer on `regex` before byte-level mapping. */
function withSplit(regex: string, normalizer: object | null = null): object {
  const { tokenizer } = tinyTokenizerFiles();
  return {
    ...tokenizer,
    normalizer,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
  };
}

describe("tokenizer.json regular expressions", () => {
  it("load real tokenizers' pre-tokenizer patterns", () => {
    for (const regex of [GPT2, LLAMA3, QWEN2, CL100K, O200K, DEEPSEEK]) {
      expect(findNestedQuantifier(regex)).toBeNull();
      const tok = new Tokenizer(withSplit(regex), tinyTokenizerFiles().config);
      const text = "Hello world, it's 2024!\n\n  héllo   wörld's 12345 ok";
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it("refuse nested quantifiers in Split and Replace patterns, naming the file and the pattern", () => {
    for (const bad of ["(.*)*Z", "(a+)+", "(a|a)*", "x(?:y(z*))+", "(a?b?){2,}"]) {
      expect(findNestedQuantifier(bad)).not.toBeNull();
      const split = () =>
        new Tokenizer(withSplit(bad), {}, { tokenizerJson: "models/m/tokenizer.json" });
      expect(split).toThrow(FileFormatError);
      expect(split).toThrow(
        `models/m/tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex ${JSON.stringify(bad)} is refused`,
      );
      const replace = () =>
        new Tokenizer(
          withSplit(GPT2, {
            type: "Sequence",
            normalizers: [{ type: "Replace", pattern: { Regex: bad }, content: "" }],
          }),
        );
      expect(replace).toThrow(/tokenizer\.json: normalizer\.normalizers\[0\]\.pattern\.Regex/);
    }
    // Refused on load, so encode never meets "(.*)*Z" (which hangs a backtracking engine).
    const t0 = performance.now();
    expect(() => new Tokenizer(withSplit("(.*)*Z"))).toThrow(/nested|repeats a group/);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});

/** A small seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WRONG_VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  1e12,
  "",
  "x",
  "(.*)*Z",
  true,
  [],
  [1, 2],
  ["a", "b"],
  {},
  { Regex: "(.*)*Z" },
  { Regex: "(" },
  { Regex: 5 },
  { String: 7 },
  { type: "Nope" },
  { type: "BPE" },
  { type: "Sequence" },
  { type: "Replace" },
  { type: "Split" },
  { type: "Metaspace" },
  { type: "WordPiece", vocab: {} },
  { type: "Unigram", vocab: [["a", 0]] },
  { type: "ByteLevel" },
  { type: "TemplateProcessing", single: "nope" },
  { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|x|>" } }] },
  { content: 5, id: "x" },
];

describe("a seeded mutation test of tokenizer.json", () => {
  it("ends every mutation in a working encode/decode or a typed error, within 2 s", () => {
    const base = withSplit(LLAMA3, {
      type: "Sequence",
      normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { String: "\t" }, content: " " }],
    });
    const { config } = tinyTokenizerFiles();
    const random = rng(20260601);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const outcomes = { ok: 0, typed: 0 };
    const failures: string[] = [];
    for (let n = 0; n < 400; n++) {
      const json = structuredClone(base) as Record<string, unknown>;
      const log: string[] = [];
      for (let m = 0, count = 1 + Math.floor(random() * 3); m < count; m++) {
        // Every object or array outside the vocabulary (and a few vocabulary entries).
        const nodes: [Record<string, unknown> | unknown[], string][] = [];
        const visit = (node: unknown, path: string) => {
          if (typeof node !== "object" || node === null) return;
          nodes.push([node as Record<string, unknown>, path]);
          if (path.endsWith(".vocab") || path.endsWith(".merges")) return;
          for (const [k, v] of Object.entries(node)) visit(v, `${path}.${k}`);
        };
        for (const k of ["model", "normalizer", "pre_tokenizer", "added_tokens", "decoder"]) {
          visit(json[k], k);
        }
        nodes.push([json, ""]);
        const [node, path] = pick(nodes);
        const keys = Object.keys(node);
        const key = keys.length > 0 && random() < 0.9 ? pick(keys) : "extra";
        const action = random();
        if (action < 0.3) {
          if (Array.isArray(node)) node.splice(Number(key), 1);
          else delete node[key];
          log.push(`delete ${path}.${key}`);
        } else {
          const value = structuredClone(pick(WRONG_VALUES));
          (node as Record<string, unknown>)[key] = value;
          log.push(`${path}.${key} = ${JSON.stringify(value)}`);
        }
      }
      const t0 = performance.now();
      try {
        const tok = new Tokenizer(json, config);
        for (const text of ["hello world", "héllo,\twörld's 123 <|eos|>!", ""]) {
          const ids = tok.encode(text);
          tok.decode(ids);
          tok.decode(ids, { skipSpecialTokens: true });
        }
        tok.encodeBatch(["hello", "hi hi"]);
        void tok.vocabSize;
        void tok.eosTokenId;
        outcomes.ok++;
      } catch (e) {
        if (e instanceof PeftError) outcomes.typed++;
        else failures.push(`${log.join("; ")}: ${(e as Error)?.constructor?.name}: ${e}`);
      }
      const ms = performance.now() - t0;
      if (ms > 2000) failures.push(`${log.join("; ")}: took ${ms.toFixed(0)} ms`);
    }
    expect(failures).toEqual([]);
    // Both outcomes occur: the mutations are neither all harmless nor all fatal.
    expect(outcomes.ok).toBeGreaterThan(20);
    expect(outcomes.typed).toBeGreaterThan(20);
  });
});
