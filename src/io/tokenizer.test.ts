import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath } from "../../test/helpers/fixtures.js";
import { tinyTokenizerFiles } from "../../test/helpers/tiny-tokenizer.js";
import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";
import { resolveModelDir } from "./model-dir.js";
import { Tokenizer } from "./tokenizer.js";

function tokenizerDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "peft-tok-"));
  const { tokenizer, config } = tinyTokenizerFiles();
  writeFileSync(join(dir, "config.json"), "{}");
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return dir;
}

describe("Tokenizer", () => {
  const tok = Tokenizer.fromPretrained(tokenizerDir());

  it("segments by the BPE merges and decodes back", () => {
    const ids = tok.encode("hello world");
    // "hello" and " world" are single merged symbols (ids after 3 specials + 256 bytes + merges).
    expect(ids).toEqual([tok.tokenId("hello"), tok.tokenId("Ġworld")]);
    expect(tok.decode(ids)).toBe("hello world");
    const other = "héllo, wörld! 123";
    expect(tok.decode(tok.encode(other))).toBe(other);
    expect(tok.encode("hi").length).toBe(2); // no merge for "h i": two byte tokens
  });

  it("knows its special tokens", () => {
    expect([tok.padTokenId, tok.bosTokenId, tok.eosTokenId]).toEqual([0, 1, 2]);
    expect(tok.decode([1, ...tok.encode("hello"), 2], { skipSpecialTokens: true })).toBe("hello");
    expect(tok.vocabSize).toBe(3 + 256 + 9);
  });

  it("left-pads batches and masks the padding", () => {
    const batch = tok.encodeBatch(["hello world", "hi"]);
    expect(batch.inputIds.shape).toEqual([2, 2]);
    expect(batch.attentionMask.toArray()).toEqual([
      [1, 1],
      [1, 1],
    ]);
    // "hello" is one merged token; "hi hi" is five byte tokens (h, i, Ġ, h, i).
    const uneven = tok.encodeBatch(["hello", "hi hi"]);
    expect(uneven.attentionMask.toArray()).toEqual([
      [0, 0, 0, 0, 1],
      [1, 1, 1, 1, 1],
    ]);
    expect((uneven.inputIds.toArray() as number[][])[0][0]).toBe(tok.padTokenId);
  });

  it("renders the chat template", () => {
    const text = tok.applyChatTemplate(
      [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
      ],
      { addGenerationPrompt: true },
    );
    expect(text).toBe("<|bos|>user\nhi<|eos|><|bos|>assistant\nhello<|eos|><|bos|>assistant\n");
    expect(() => tok.applyChatTemplate([{ role: "user" } as never])).toThrow(ValueError);
  });

  it("reports missing and malformed files", () => {
    expect(() => Tokenizer.fromPretrained(fixturePath("models/tiny-llama"))).toThrow(
      FileNotFoundError,
    );
    const dir = tokenizerDir();
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ version: "1.0" }));
    expect(() => Tokenizer.fromPretrained(dir)).toThrow(FileFormatError);
  });
});

describe("model directories", () => {
  it("resolve the Hugging Face cache layout", () => {
    const cache = mkdtempSync(join(tmpdir(), "peft-hub-"));
    const repo = join(cache, "models--org--tiny");
    const snap = join(repo, "snapshots", "abc123");
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(repo, "refs"));
    writeFileSync(join(repo, "refs", "main"), "abc123\n");
    writeFileSync(join(snap, "config.json"), "{}");
    expect(resolveModelDir(repo)).toBe(snap);
    const saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      expect(resolveModelDir("org/tiny")).toBe(snap);
      expect(() => resolveModelDir("org/other")).toThrow(/looked in .*models--org--other/);
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = saved;
    }
  });
});
