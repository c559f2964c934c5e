import { existsSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";
import { Tensor } from "../tensor/tensor.js";
import { readJsonFile } from "./config.js";
import { resolveModelDir } from "./model-dir.js";

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

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) with its chat
 * template. Encoding and decoding are done by @huggingface/tokenizers, templates are
 * rendered by @huggingface/jinja.
 */
export class Tokenizer {
  private readonly inner: HFTokenizer;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly chatTemplate: string | null;

  constructor(
    tokenizerJson: object,
    readonly config: Record<string, unknown> = {},
  ) {
    this.inner = new HFTokenizer(tokenizerJson, config);
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.padToken = tokenText(config.pad_token);
    const tpl = config.chat_template;
    this.chatTemplate = typeof tpl === "string" ? tpl : null;
  }

  /** Loads tokenizer.json and tokenizer_config.json (optional) from a model directory. */
  static fromPretrained(pathOrId: string): Tokenizer {
    const dir = resolveModelDir(pathOrId);
    const jsonPath = join(dir, "tokenizer.json");
    if (!existsSync(jsonPath))
      throw new FileNotFoundError(jsonPath, "no tokenizer.json in the model directory");
    const json = readJsonFile(jsonPath);
    const configPath = join(dir, "tokenizer_config.json");
    const config = existsSync(configPath) ? readJsonFile(configPath) : {};
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
    try {
      return new Tokenizer(json, config as Record<string, unknown>);
    } catch (e) {
      throw new FileFormatError(jsonPath, `cannot build the tokenizer: ${(e as Error).message}`);
    }
  }

  tokenId(token: string | null): number | null {
    return token === null ? null : (this.inner.token_to_id(token) ?? null);
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
    return this.inner.get_vocab(true).size;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.inner.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
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

  /** Renders messages with the model's chat template (as transformers' apply_chat_template with tokenize=False). */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean } = {},
  ): string {
    if (this.chatTemplate === null) {
      throw new ValueError(
        "applyChatTemplate: this tokenizer has no chat_template in tokenizer_config.json",
      );
    }
    for (const [i, m] of messages.entries()) {
      if (typeof m?.role !== "string" || typeof m?.content !== "string") {
        throw new ValueError(
          `applyChatTemplate: message ${i} needs string "role" and "content" fields`,
        );
      }
    }
    return new Template(this.chatTemplate).render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
      pad_token: this.padToken ?? "",
    });
  }
}
