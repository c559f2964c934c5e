import { FileFormatError, ValueError } from "../errors.js";
import { firstInvalidUtf8 } from "../io/config.js";
import { readBinaryFile } from "../io/read-file.js";
import type { ChatMessage, Tokenizer } from "../io/tokenizer.js";
import { Generator } from "../tensor/random.js";
import { Tensor } from "../tensor/tensor.js";

/** One training example: token ids and labels (-100 where no loss is taken). */
export interface Example {
  inputIds: number[];
  labels: number[];
}

/** A dataset file's bytes (a file a user picked, one fetched), with its name for messages. */
export interface DatasetBytes {
  name: string;
  bytes: Uint8Array;
}

/**
 * Reads a JSONL file: UTF-8 (a leading byte-order mark is dropped), LF or CRLF line
 * endings. Invalid UTF-8 and invalid JSON name their line number. Empty lines are skipped.
 */
export function readJsonl(source: string | DatasetBytes): { line: number; value: unknown }[] {
  const path = typeof source === "string" ? source : source.name;
  const bytes = typeof source === "string" ? readBinaryFile(path, "dataset file") : source.bytes;
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const out: { line: number; value: unknown }[] = [];
  let pos = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let line = 1; pos <= bytes.length; line++) {
    let nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) nl = bytes.length;
    const end = nl > pos && bytes[nl - 1] === 0x0d ? nl - 1 : nl;
    const raw = bytes.subarray(pos, end);
    let text: string;
    try {
      text = decoder.decode(raw);
    } catch {
      const at = Math.max(firstInvalidUtf8(raw), 0);
      throw new FileFormatError(
        path,
        `line ${line} is not valid UTF-8 (byte 0x${raw[at].toString(16).padStart(2, "0")} at column ${at + 1} of the line, byte offset ${pos + at} in the file)`,
      );
    }
    pos = nl + 1;
    if (text.trim() === "") continue;
    try {
      out.push({ line, value: JSON.parse(text) });
    } catch (e) {
      throw new FileFormatError(path, `line ${line} is not valid JSON (${(e as Error).message})`);
    }
  }
  if (out.length === 0) throw new FileFormatError(path, "the dataset has no records");
  return out;
}

/** Tokens dropped from the end of a partial encoding: the cut can change the last word's tokens. */
const CUT_SLACK = 8;

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The first `maxTokens` tokens of `text`, tokenizing only a prefix of it, so that time and
 * memory follow `maxTokens` and not the length of the text (a 50 MB record costs what a
 * few kilobytes cost). The prefix starts at 8 * maxTokens + 64 characters and doubles
 * until it yields CUT_SLACK tokens more than needed, and two successive prefixes agree on
 * the first `maxTokens` (tokens near a cut can differ from the full text's: a word cut in
 * two, a run of spaces cut short); the whole text is tokenized once a prefix would reach
 * its end. For ordinary text the result equals `tokenizer.encode(text).slice(0, maxTokens)`.
 * Without `maxTokens` the whole text is tokenized.
 */
export function encodeTruncated(
  tokenizer: Tokenizer,
  text: string,
  maxTokens: number | undefined,
  options: { addSpecialTokens?: boolean } = {},
): number[] {
  if (maxTokens === undefined) return tokenizer.encode(text, options);
  if (maxTokens <= 0) return [];
  let previous: number[] | null = null;
  for (let len = 8 * maxTokens + 64; ; len *= 2) {
    // Do not split a surrogate pair.
    const cut = len < text.length && (text.charCodeAt(len - 1) & 0xfc00) === 0xd800 ? len + 1 : len;
    if (cut >= text.length) return tokenizer.encode(text, options).slice(0, maxTokens);
    const ids = tokenizer.encode(text.slice(0, cut), options);
    if (ids.length >= maxTokens + CUT_SLACK) {
      const head = ids.slice(0, maxTokens);
      if (previous !== null && sameIds(previous, head)) return head;
      previous = head;
    }
  }
}

export interface TokenizeOptions {
  /** Truncate the example to this many tokens (only that much of the text is tokenized). */
  maxLength?: number;
  /** Called with a message when a record is tokenized in a fallback way (a chat template whose prompt is not a prefix of the conversation). */
  onWarning?: (message: string) => void;
}

interface Parts {
  prompt: string;
  completion: string;
  /** Append the EOS token to the completion (when the tokenizer has one). */
  addEos: boolean;
}

/** What a chat record learns: the template's rendering after the prompt, end of turn included. */
function chatParts(
  messages: ChatMessage[],
  tokenizer: Tokenizer,
  where: string,
  onWarning: ((message: string) => void) | undefined,
): Parts {
  const last = messages[messages.length - 1];
  if (last?.role !== "assistant" || typeof last.content !== "string") {
    throw new ValueError(
      `${where}: a chat record must end with an assistant message to learn from`,
    );
  }
  const prompt = tokenizer.applyChatTemplate(messages.slice(0, -1), {
    addGenerationPrompt: true,
    where,
  });
  const full = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false, where });
  if (!full.startsWith(prompt)) {
    onWarning?.(
      `${where}: the chat template's rendering of the conversation does not start with its rendering of the messages before the last one (with the generation prompt), so the record learns the last assistant message's content + EOS without the template's end-of-turn text`,
    );
    return { prompt, completion: last.content, addEos: true };
  }
  const completion = full.slice(prompt.length);
  // The template's end-of-turn text: what it writes after the assistant's content.
  let tail = "";
  for (const c of [last.content, last.content.trim()]) {
    const k = completion.startsWith(c) ? 0 : c === "" ? -1 : completion.lastIndexOf(c);
    if (k >= 0) {
      tail = completion.slice(k + c.length);
      break;
    }
  }
  const eos = tokenizer.eosToken;
  const endsWithEos = eos !== null && eos !== "" && completion.endsWith(eos);
  return { prompt, completion, addEos: !endsWithEos && tail.trim() === "" };
}

/**
 * Tokenises one record. `text`: every token is learned. `prompt`/`completion`: only the
 * completion is learned, followed by EOS when the tokenizer has one. Chat `messages`: the
 * conversation is rendered with the chat template, and what the rendering adds after the
 * prompt (the messages before the last, with the generation prompt) is learned: the last
 * assistant message and the template's end-of-turn text (ChatML's "<|im_end|>\n"), with
 * EOS appended only when the template writes nothing after the content. Prompt tokens are
 * masked with -100. With `maxLength`, the example is truncated to it and only as much of
 * each text as that needs is tokenized.
 */
export function tokenizeRecord(
  record: unknown,
  tokenizer: Tokenizer,
  where: string,
  options: TokenizeOptions = {},
): Example {
  const { maxLength } = options;
  if (maxLength !== undefined && (!Number.isSafeInteger(maxLength) || maxLength < 1)) {
    throw new ValueError(`maxLength should be a positive integer, found ${maxLength}`);
  }
  const eos = tokenizer.eosTokenId;
  const r = record as Record<string, unknown>;
  const isObject = typeof r === "object" && r !== null && !Array.isArray(r);
  if (isObject && typeof r.text === "string") {
    const ids = [...encodeTruncated(tokenizer, r.text, maxLength), ...(eos === null ? [] : [eos])];
    const kept = maxLength === undefined ? ids : ids.slice(0, maxLength);
    return { inputIds: kept, labels: [...kept] };
  }
  let parts: Parts;
  if (isObject && typeof r.prompt === "string" && typeof r.completion === "string") {
    parts = { prompt: r.prompt, completion: r.completion, addEos: true };
  } else if (isObject && Array.isArray(r.messages)) {
    parts = chatParts(r.messages as ChatMessage[], tokenizer, where, options.onWarning);
  } else {
    throw new ValueError(
      `${where}: expected {"text": ...}, {"prompt": ..., "completion": ...} or {"messages": [...]}, found ${JSON.stringify(record)?.slice(0, 80)}`,
    );
  }
  const p = encodeTruncated(tokenizer, parts.prompt, maxLength);
  const room = maxLength === undefined ? undefined : maxLength - p.length;
  let c: number[] = [];
  if (room === undefined || room > 0) {
    c = encodeTruncated(tokenizer, parts.completion, room, { addSpecialTokens: false });
    if (parts.addEos && eos !== null) c.push(eos);
    if (room !== undefined) c = c.slice(0, room);
  }
  return { inputIds: [...p, ...c], labels: [...p.map(() => -100), ...c] };
}

/** Whether an example has a label the loss uses (labels are shifted: the first is never predicted). */
export function hasLearnableTokens(example: Example): boolean {
  for (let i = 1; i < example.labels.length; i++) if (example.labels[i] !== -100) return true;
  return false;
}

export interface LoadDatasetOptions {
  /**
   * Receives the dataset's warnings, one message per kind (records skipped because they
   * have no token to learn from; chat records tokenized in the fallback way), each with the
   * count and the first line numbers. Default: console.warn.
   */
  onWarning?: (message: string) => void;
}

function lineList(lines: readonly number[]): string {
  const shown = lines.slice(0, 5).join(", ");
  return lines.length > 5 ? `${shown}, ... (${lines.length - 5} more)` : shown;
}

/**
 * Reads and tokenises a JSONL dataset, from a path or from its bytes (see tokenizeRecord), truncating each example to
 * `maxLength`. Records left with no token to learn from (a prompt that fills `maxLength`,
 * an empty text, an empty completion without EOS) are skipped with one warning; when no
 * record is left, a FileFormatError says so.
 */
export function loadDataset(
  source: string | DatasetBytes,
  tokenizer: Tokenizer,
  maxLength?: number,
  options: LoadDatasetOptions = {},
): Example[] {
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const within = maxLength === undefined ? "" : ` within max length ${maxLength}`;
  const path = typeof source === "string" ? source : source.name;
  const records = readJsonl(source);
  const skipped: number[] = [];
  const fallbacks: number[] = [];
  let fallbackReason = "";
  const out: Example[] = [];
  for (const { line, value } of records) {
    const ex = tokenizeRecord(value, tokenizer, `${path}: line ${line}`, {
      maxLength,
      onWarning: (m) => {
        if (fallbacks.length === 0) fallbackReason = m;
        fallbacks.push(line);
      },
    });
    if (hasLearnableTokens(ex)) out.push(ex);
    else skipped.push(line);
  }
  if (fallbacks.length > 0) {
    warn(
      `${path}: ${fallbacks.length} chat record(s) (lines ${lineList(fallbacks)}) were tokenized the fallback way. First: ${fallbackReason}`,
    );
  }
  if (out.length === 0) {
    throw new FileFormatError(path, `every record has no tokens to learn from${within}`);
  }
  if (skipped.length > 0) {
    warn(
      `${path}: skipped ${skipped.length} of ${records.length} record(s) with no tokens to learn from${within} (lines ${lineList(skipped)})`,
    );
  }
  return out;
}

export interface Batch {
  inputIds: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
  /** Tokens that carry a loss. */
  tokens: number;
}

/** Right-pads examples into one batch (pad positions: mask 0, label -100). */
export function collate(examples: readonly Example[], padId: number): Batch {
  const width = Math.max(...examples.map((e) => e.inputIds.length));
  const ids: number[] = [];
  const mask: number[] = [];
  const labels: number[] = [];
  let tokens = 0;
  for (const e of examples) {
    const pad = width - e.inputIds.length;
    ids.push(...e.inputIds, ...new Array(pad).fill(padId));
    mask.push(...e.inputIds.map(() => 1), ...new Array(pad).fill(0));
    labels.push(...e.labels, ...new Array(pad).fill(-100));
    tokens += e.labels.filter((l) => l !== -100).length;
  }
  const shape = [examples.length, width];
  return {
    inputIds: Tensor.from(ids, shape, "int64"),
    attentionMask: Tensor.from(mask, shape, "int64"),
    labels: Tensor.from(labels, shape, "int64"),
    tokens,
  };
}

/** Concatenates examples and cuts the stream into blocks of `length` (no padding). */
export function pack(examples: readonly Example[], length: number): Example[] {
  const ids = examples.flatMap((e) => e.inputIds);
  const labels = examples.flatMap((e) => e.labels);
  const out: Example[] = [];
  for (let i = 0; i + length <= ids.length; i += length)
    out.push({ inputIds: ids.slice(i, i + length), labels: labels.slice(i, i + length) });
  return out;
}

/** The order examples are visited in an epoch: a seeded shuffle, the same for the same (seed, epoch). */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  const g = new Generator(seed * 1000003 + epoch);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = g.nextUint32() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
