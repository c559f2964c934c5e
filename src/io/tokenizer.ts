import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { FileFormatError, FileNotFoundError, PeftError, ValueError } from "../errors.js";
import { Tensor } from "../tensor/tensor.js";
import { ChatTemplate, chatTemplateLimits } from "./chat-template.js";
import { readJsonIn } from "./config.js";
import type { ModelFiles } from "./files/model-files.js";
import { modelFiles } from "./files/resolve.js";
import { checkTokenizerPatterns } from "./regex-safety.js";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface BatchEncoding {
  /** [B, T] int64, left-padded (the side generation needs). */
  inputIds: Tensor;
  /** [B, T] int64, 0 on padding. */
  attentionMask: Tensor;
}

/** A special token given as a string or as an AddedToken-like object in tokenizer_config.json. */
function tokenText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (
    typeof v === "object" &&
    v !== null &&
    typeof (v as { content?: unknown }).content === "string"
  ) {
    return (v as { content: string }).content;
  }
  return null;
}

/** Where a tokenizer's files came from, for error messages. */
export interface TokenizerFiles {
  /** Default "tokenizer.json". */
  tokenizerJson?: string;
  /** Default "tokenizer_config.json". */
  tokenizerConfig?: string;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) with its chat
 * template. Encoding and decoding are done by @huggingface/tokenizers, templates are
 * rendered by @huggingface/jinja (bounded: see ChatTemplate). A failure inside either
 * library is a FileFormatError naming the file it comes from; regular expressions with
 * nested quantifiers (exponential time on a backtracking engine) are refused on load.
 */
export class Tokenizer {
  private readonly inner: HFTokenizer;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly chatTemplate: string | null;
  /** Paths (or names) of tokenizer.json and tokenizer_config.json, for error messages. */
  readonly tokenizerFile: string;
  readonly configFile: string;
  private compiledTemplate: ChatTemplate | null = null;

  constructor(
    tokenizerJson: object,
    readonly config: Record<string, unknown> = {},
    files: TokenizerFiles = {},
  ) {
    this.tokenizerFile = files.tokenizerJson ?? "tokenizer.json";
    this.configFile = files.tokenizerConfig ?? "tokenizer_config.json";
    checkTokenizerPatterns(tokenizerJson, this.tokenizerFile);
    try {
      this.inner = new HFTokenizer(tokenizerJson, config);
    } catch (e) {
      if (e instanceof PeftError) throw e;
      throw new FileFormatError(
        this.tokenizerFile,
        `cannot build the tokenizer: ${errorMessage(e)}`,
      );
    }
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.padToken = tokenText(config.pad_token);
    const tpl = config.chat_template;
    this.chatTemplate = typeof tpl === "string" ? tpl : null;
  }

  /** Runs a call into @huggingface/tokenizers, turning its failures into typed errors. */
  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof PeftError) throw e;
      throw new FileFormatError(this.tokenizerFile, `${what} failed: ${errorMessage(e)}`);
    }
  }

  /**
   * Loads tokenizer.json and tokenizer_config.json (optional) from a model directory, a
   * hub id in the local cache, or a model's files (in memory, fetched).
   */
  static fromPretrained(pathOrFiles: string | ModelFiles): Tokenizer {
    const files = modelFiles(pathOrFiles);
    const jsonPath = files.describe("tokenizer.json");
    if (!files.has("tokenizer.json"))
      throw new FileNotFoundError(jsonPath, "no tokenizer.json in the model directory");
    const json = readJsonIn(files, "tokenizer.json");
    const configPath = files.describe("tokenizer_config.json");
    const config = files.has("tokenizer_config.json")
      ? readJsonIn(files, "tokenizer_config.json")
      : {};
    if (
      typeof json !== "object" ||
      json === null ||
      typeof (json as { model?: unknown }).model !== "object"
    ) {
      throw new FileFormatError(
        jsonPath,
        'expected a tokenizer.json object with a "model" section',
      );
    }
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      throw new FileFormatError(configPath, "expected a JSON object");
    }
    return new Tokenizer(json, config as Record<string, unknown>, {
      tokenizerJson: jsonPath,
      tokenizerConfig: configPath,
    });
  }

  tokenId(token: string | null): number | null {
    if (token === null) return null;
    const id = this.guard("token lookup", () => this.inner.token_to_id(token));
    return Number.isSafeInteger(id) ? (id as number) : null;
  }

  get bosTokenId(): number | null {
    return this.tokenId(this.bosToken);
  }

  get eosTokenId(): number | null {
    return this.tokenId(this.eosToken);
  }

  /** The pad token's id, falling back to EOS (as most causal LMs do), then 0. */
  get padTokenId(): number {
    return this.tokenId(this.padToken) ?? this.eosTokenId ?? 0;
  }

  get vocabSize(): number {
    return this.guard("reading the vocabulary", () => this.inner.get_vocab(true).size);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== "string")
      throw new ValueError(`encode: expected a string, found ${typeof text}`);
    const out = this.guard("encode", () =>
      this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }),
    );
    const ids = out?.ids;
    if (!Array.isArray(ids)) {
      throw new FileFormatError(this.tokenizerFile, "encode failed: the tokenizer returned no ids");
    }
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isSafeInteger(ids[i]) || ids[i] < 0) {
        const token = Array.isArray(out.tokens) ? out.tokens[i] : undefined;
        throw new FileFormatError(
          this.tokenizerFile,
          `encode: token ${JSON.stringify(token)} has no id in the vocabulary and the model has no usable unk_token (found id ${JSON.stringify(ids[i])})`,
        );
      }
    }
    return ids;
  }

  /** Decodes ids; ids the vocabulary does not have (a model's padded vocabulary) are skipped. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const known = ids.filter(
      (id) =>
        Number.isSafeInteger(id) &&
        id >= 0 &&
        typeof this.guard("decode", () => this.inner.id_to_token(id)) === "string",
    );
    if (known.length === 0) return "";
    const text = this.guard("decode", () =>
      this.inner.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false }),
    );
    if (typeof text !== "string") {
      throw new FileFormatError(this.tokenizerFile, "decode failed: the decoder returned no text");
    }
    return text;
  }

  /** Encodes several texts into one left-padded batch. */
  encodeBatch(
    texts: readonly string[],
    options: { addSpecialTokens?: boolean } = {},
  ): BatchEncoding {
    if (texts.length === 0) throw new ValueError("encodeBatch: expected at least one text");
    const rows = texts.map((t) => this.encode(t, options));
    const width = Math.max(...rows.map((r) => r.length));
    const pad = this.padTokenId;
    const ids = rows.map((r) => [...new Array(width - r.length).fill(pad), ...r]);
    const mask = rows.map((r) => [
      ...new Array(width - r.length).fill(0),
      ...new Array(r.length).fill(1),
    ]);
    return {
      inputIds: Tensor.from(ids.flat(), [rows.length, width], "int64"),
      attentionMask: Tensor.from(mask.flat(), [rows.length, width], "int64"),
    };
  }

  /**
   * Renders messages with the model's chat template (as transformers' apply_chat_template
   * with tokenize=False). `where` (e.g. "data.jsonl: line 3") is named in errors. Template
   * syntax errors, render errors and runaway templates are FileFormatErrors naming
   * tokenizer_config.json; raise_exception() in the template is a ValueError.
   */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean; where?: string } = {},
  ): string {
    if (this.chatTemplate === null) {
      throw new ValueError(
        "applyChatTemplate: this tokenizer has no chat_template in tokenizer_config.json",
      );
    }
    const prefix = options.where === undefined ? "applyChatTemplate" : options.where;
    if (!Array.isArray(messages))
      throw new ValueError(`${prefix}: "messages" should be a list of messages`);
    let chars = 0;
    for (const [i, m] of messages.entries()) {
      if (typeof m?.role !== "string" || typeof m?.content !== "string") {
        throw new ValueError(`${prefix}: message ${i} needs string "role" and "content" fields`);
      }
      chars += m.role.length + m.content.length;
    }
    this.compiledTemplate ??= new ChatTemplate(this.chatTemplate, this.configFile);
    return this.compiledTemplate.render(
      {
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: this.bosToken ?? "",
        eos_token: this.eosToken ?? "",
        pad_token: this.padToken ?? "",
      },
      chatTemplateLimits(chars, messages.length),
      options.where,
    );
  }
}
