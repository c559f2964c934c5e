import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tinyTokenizerFiles } from "../../test/helpers/tiny-tokenizer.js";
import { FileFormatError, ValueError } from "../errors.js";
import { Tokenizer } from "../io/tokenizer.js";
import {
  type Example,
  encodeTruncated,
  hasLearnableTokens,
  loadDataset,
  tokenizeRecord,
} from "./data.js";

const tmp = () => mkdtempSync(join(tmpdir(), "peft-data-"));

function write(name: string, content: string | Uint8Array): string {
  const p = join(tmp(), name);
  writeFileSync(p, content);
  return p;
}

const CHATML =
  "{% for m in messages %}<|im_start|>{{m.role}}\n{{m.content}}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/** The tiny byte-level tokenizer, with <|im_start|> and <|im_end|> as special tokens. */
function chatmlTokenizer(template = CHATML, configPatch: Record<string, unknown> = {}): Tokenizer {
  const { tokenizer, config } = tinyTokenizerFiles();
  const t = tokenizer as {
    added_tokens: object[];
    model: { vocab: Record<string, number> };
  };
  for (const content of ["<|im_start|>", "<|im_end|>"]) {
    const id = Object.keys(t.model.vocab).length;
    t.model.vocab[content] = id;
    t.added_tokens.push({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
  }
  return new Tokenizer(tokenizer, { ...config, chat_template: template, ...configPatch });
}

const plain = (() => {
  const { tokenizer, config } = tinyTokenizerFiles();
  return new Tokenizer(tokenizer, config);
})();

const truncated = (e: Example, n: number): Example => ({
  inputIds: e.inputIds.slice(0, n),
  labels: e.labels.slice(0, n),
});

describe("JSONL files", () => {
  it("accept a UTF-8 byte-order mark and CRLF line endings", () => {
    const p = write(
      "bom.jsonl",
      '\uFEFF{"text": "hello world"}\r\n\r\n{"prompt": "Q: hi", "completion": " héllo"}\r\n',
    );
    const data = loadDataset(p, plain);
    expect(data).toEqual([
      tokenizeRecord({ text: "hello world" }, plain, "x"),
      tokenizeRecord({ prompt: "Q: hi", completion: " héllo" }, plain, "x"),
    ]);
  });

  it("refuse invalid UTF-8, naming the line", () => {
    const p = write(
      "bad-utf8.jsonl",
      Buffer.concat([
        Buffer.from('{"text": "a"}\n\n{"text": "b'),
        Buffer.from([0xc3, 0x28]), // a lead byte without its continuation
        Buffer.from('"}\n'),
      ]),
    );
    expect(() => loadDataset(p, plain)).toThrow(FileFormatError);
    expect(() => loadDataset(p, plain)).toThrow(/line 3 is not valid UTF-8/);
    const stray = write("stray.jsonl", Buffer.from([0x7b, 0x7d, 0x0a, 0x80, 0x0a]));
    expect(() => loadDataset(stray, plain)).toThrow(/line 2 is not valid UTF-8/);
  });
});

describe("chat records", () => {
  const messages = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
  ];

  it("learn the template's end-of-turn tokens (ChatML's <|im_end|>)", () => {
    const tok = chatmlTokenizer();
    const imEnd = tok.tokenId("<|im_end|>");
    expect(imEnd).not.toBeNull();
    const ex = tokenizeRecord({ messages }, tok, "data.jsonl: line 1");
    const learned = ex.labels.filter((l) => l !== -100);
    expect(learned).toContain(imEnd);
    // The learned part is the rest of the rendering: content + "<|im_end|>\n", no extra EOS.
    expect(learned).toEqual(tok.encode("hello<|im_end|>\n", { addSpecialTokens: false }));
    expect(learned).not.toContain(tok.eosTokenId);
    const prompt = tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true });
    expect(ex.inputIds).toEqual([
      ...tok.encode(prompt),
      ...tok.encode("hello<|im_end|>\n", { addSpecialTokens: false }),
    ]);
    expect(ex.labels.slice(0, tok.encode(prompt).length).every((l) => l === -100)).toBe(true);
  });

  it("add no second EOS when the template ends its turns with the EOS token", () => {
    // The tiny tokenizer's own template ends every turn with <|eos|>.
    const { tokenizer, config } = tinyTokenizerFiles();
    const tok = new Tokenizer(tokenizer, config);
    const ex = tokenizeRecord({ messages }, tok, "x");
    expect(ex.labels.filter((l) => l !== -100)).toEqual([tok.tokenId("hello"), tok.eosTokenId]);
  });

  it("fall back to content + EOS, with a reason, when the prompt is not a prefix of the rendering", () => {
    const tok = chatmlTokenizer(
      "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}>>> {% endif %}",
    );
    const warnings: string[] = [];
    const ex = tokenizeRecord({ messages }, tok, "data.jsonl: line 4", {
      onWarning: (m) => warnings.push(m),
    });
    expect(ex.labels.filter((l) => l !== -100)).toEqual([tok.tokenId("hello"), tok.eosTokenId]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/line 4: the chat template's rendering .* does not start with/);
    const p = write(
      "fallback.jsonl",
      `${JSON.stringify({ messages })}\n${JSON.stringify({ messages })}\n`,
    );
    const seen: string[] = [];
    expect(loadDataset(p, tok, undefined, { onWarning: (m) => seen.push(m) })).toHaveLength(2);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/2 chat record\(s\) \(lines 1, 2\) were tokenized the fallback way/);
  });

  it("name the dataset line and tokenizer_config.json when the template fails", () => {
    const tok = chatmlTokenizer(
      "{% if messages[0].role != 'system' %}{{ raise_exception('System message required') }}{% endif %}",
    );
    const run = () => tokenizeRecord({ messages }, tok, "data.jsonl: line 7");
    expect(run).toThrow(ValueError);
    expect(run).toThrow(
      /data\.jsonl: line 7: the chat template in tokenizer_config\.json refused the conversation: System message required/,
    );
    const broken = chatmlTokenizer("{{ messages | no_such_filter }}");
    expect(() => tokenizeRecord({ messages }, broken, "data.jsonl: line 9")).toThrow(
      /tokenizer_config\.json: chat_template failed to render for data\.jsonl: line 9/,
    );
  });
});

describe("long records", () => {
  const texts = [
    "hello world, hello world! 123 456",
    "héllo wörld — ünïcödé 🎉🎉 and emoji, tabs\tand   runs of    spaces\n\nnew lines",
    "<|eos|>hello<|bos|> world<|pad|>",
    "hellohellohello worldworld    \n   \t  hello",
  ];
  const long = (i: number, chars: number) => {
    let s = "";
    while (s.length < chars) s += `${texts[(i + s.length) % texts.length]} `;
    return s;
  };

  it("tokenize only a prefix, with the same result as tokenizing everything and truncating", () => {
    const tok = chatmlTokenizer();
    for (const maxLength of [1, 3, 8, 17, 64]) {
      for (let i = 0; i < texts.length; i++) {
        for (const chars of [10, 8 * maxLength + 60, 8 * maxLength + 70, 30 * maxLength + 500]) {
          const text = long(i, chars);
          const records = [
            { text },
            { prompt: text, completion: long(i + 1, chars) },
            { prompt: "Q: hi", completion: text },
            {
              messages: [
                { role: "user", content: long(i + 2, chars) },
                { role: "assistant", content: text },
              ],
            },
          ];
          for (const r of records) {
            const full = tokenizeRecord(r, tok, "x");
            expect(tokenizeRecord(r, tok, "x", { maxLength })).toEqual(truncated(full, maxLength));
          }
          expect(encodeTruncated(tok, text, maxLength)).toEqual(
            tok.encode(text).slice(0, maxLength),
          );
        }
      }
    }
  });

  it("make a 20 MB record cost what its max length needs", () => {
    const big = "hello world, ünïcödé 123! ".repeat(800_000); // ~21 M characters
    const p = write("big.jsonl", `${JSON.stringify({ text: big })}\n`);
    const t0 = performance.now();
    const data = loadDataset(p, plain, 64);
    // Reading, decoding and parsing the line take most of this; tokenizing takes a few ms.
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(data[0].inputIds).toEqual(plain.encode(big.slice(0, 10_000)).slice(0, 64));
    const half = big.slice(0, 5_000_000);
    const pc = write(
      "big-pc.jsonl",
      `${JSON.stringify({ prompt: half, completion: half })}\n${JSON.stringify({ prompt: "Q:", completion: half })}\n`,
    );
    const warnings: string[] = [];
    const t1 = performance.now();
    const pairs = loadDataset(pc, plain, 64, { onWarning: (m) => warnings.push(m) });
    expect(performance.now() - t1).toBeLessThan(1000);
    expect(pairs).toHaveLength(1); // the first record's prompt fills max length
    expect(pairs[0].inputIds).toHaveLength(64);
    expect(pairs[0].labels.slice(2)).toEqual(
      plain.encode(half.slice(0, 10_000), { addSpecialTokens: false }).slice(0, 62),
    );
    expect(warnings).toEqual([expect.stringMatching(/skipped 1 of 2 record\(s\).*\(lines 1\)/)]);
  });
});

describe("records with no tokens to learn from", () => {
  const noEos = (() => {
    const { tokenizer, config } = tinyTokenizerFiles();
    return new Tokenizer(tokenizer, { ...config, eos_token: null });
  })();

  it("are skipped with one warning giving the count and the first lines", () => {
    const lines = [
      { text: "hello world" },
      { prompt: "hello ".repeat(40), completion: " world" }, // the prompt fills max length
      { text: "" }, // only EOS: the first label is never predicted
      { prompt: "Q:", completion: " A" },
      { prompt: "hello ".repeat(40), completion: " world" },
    ];
    const p = write("skip.jsonl", `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const warnings: string[] = [];
    const data = loadDataset(p, plain, 16, { onWarning: (m) => warnings.push(m) });
    expect(data).toHaveLength(2);
    expect(data.every(hasLearnableTokens)).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /skipped 3 of 5 record\(s\) with no tokens to learn from within max length 16 \(lines 2, 3, 5\)/,
    );
    const empty = write("empty.jsonl", '{"prompt": "Q:", "completion": ""}\n{"text": "hi"}\n');
    const seen: string[] = [];
    expect(loadDataset(empty, noEos, undefined, { onWarning: (m) => seen.push(m) })).toHaveLength(
      1,
    );
    expect(seen[0]).toMatch(/skipped 1 of 2 record\(s\) with no tokens to learn from \(lines 1\)/);
  });

  it("leave a typed error when no record is left", () => {
    const p = write(
      "none.jsonl",
      `${JSON.stringify({ prompt: "hello ".repeat(40), completion: "x" })}\n{"text": ""}\n`,
    );
    const run = () => loadDataset(p, plain, 8, { onWarning: () => {} });
    expect(run).toThrow(FileFormatError);
    expect(run).toThrow(/every record has no tokens to learn from within max length 8/);
  });
});
