import { FileFormatError, ValueError } from "../errors.js";
import { readTextFile } from "../io/config.js";
import type { ChatMessage, Tokenizer } from "../io/tokenizer.js";
import { Generator } from "../tensor/random.js";
import { Tensor } from "../tensor/tensor.js";

/** One training example: token ids and labels (-100 where no loss is taken). */
export interface Example {
  inputIds: number[];
  labels: number[];
}

/** Reads a JSONL file; a line that is not valid JSON names its line number. Empty lines are skipped. */
export function readJsonl(path: string): { line: number; value: unknown }[] {
  const text = readTextFile(path, "dataset file");
  const out: { line: number; value: unknown }[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    try {
      out.push({ line: i + 1, value: JSON.parse(raw) });
    } catch (e) {
      throw new FileFormatError(path, `line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
  });
  if (out.length === 0) throw new FileFormatError(path, "the dataset has no records");
  return out;
}

/**
 * Tokenises one record. `text`: every token is learned. `prompt`/`completion` and chat
 * `messages`: only the completion (the last assistant message) is learned; the prompt
 * is masked with -100. An EOS token ends every example when the tokenizer has one.
 */
export function tokenizeRecord(record: unknown, tokenizer: Tokenizer, where: string): Example {
  const eos = tokenizer.eosTokenId;
  const end = eos === null ? [] : [eos];
  const r = record as Record<string, unknown>;
  if (typeof r === "object" && r !== null && typeof r.text === "string") {
    const ids = [...tokenizer.encode(r.text), ...end];
    return { inputIds: ids, labels: [...ids] };
  }
  let prompt: string;
  let completion: string;
  if (
    typeof r === "object" &&
    r !== null &&
    typeof r.prompt === "string" &&
    typeof r.completion === "string"
  ) {
    prompt = r.prompt;
    completion = r.completion;
  } else if (typeof r === "object" && r !== null && Array.isArray(r.messages)) {
    const messages = r.messages as ChatMessage[];
    const last = messages[messages.length - 1];
    if (last?.role !== "assistant" || typeof last.content !== "string") {
      throw new ValueError(
        `${where}: a chat record must end with an assistant message to learn from`,
      );
    }
    prompt = tokenizer.applyChatTemplate(messages.slice(0, -1), { addGenerationPrompt: true });
    completion = last.content;
  } else {
    throw new ValueError(
      `${where}: expected {"text": ...}, {"prompt": ..., "completion": ...} or {"messages": [...]}, found ${JSON.stringify(record).slice(0, 80)}`,
    );
  }
  const p = tokenizer.encode(prompt);
  const c = [...tokenizer.encode(completion, { addSpecialTokens: false }), ...end];
  return { inputIds: [...p, ...c], labels: [...p.map(() => -100), ...c] };
}

export function loadDataset(path: string, tokenizer: Tokenizer, maxLength?: number): Example[] {
  return readJsonl(path).map(({ line, value }) => {
    const ex = tokenizeRecord(value, tokenizer, `${path}: line ${line}`);
    if (maxLength !== undefined && ex.inputIds.length > maxLength) {
      return { inputIds: ex.inputIds.slice(0, maxLength), labels: ex.labels.slice(0, maxLength) };
    }
    return ex;
  });
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
