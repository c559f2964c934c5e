import { ShapeError, ValueError } from "../errors.js";
import { concat, slice } from "../tensor/ops/layout.js";
import { type Generator, generatorFor } from "../tensor/random.js";
import { fmt } from "../tensor/shape.js";
import { noGrad } from "../tensor/state.js";
import { Tensor } from "../tensor/tensor.js";
import type { GenerationConfig } from "./generation-config.js";
import type { CausalLanguageModel } from "./output.js";
import { StopStringMatcher, type TokenDecoder } from "./stop-strings.js";

export interface TokenStreamer {
  /** Called once per step with the new token of every row. */
  put(tokens: number[]): void;
  /** Called once when generation stops. */
  end(): void;
}

export interface GenerateOptions {
  /**
   * New tokens at most. Options left undefined take the model's generationConfig
   * (generation_config.json); without one, 20 new tokens.
   */
  maxNewTokens?: number;
  /** Prompt + new tokens at most (transformers' max_length); used when maxNewTokens is undefined. */
  maxLength?: number;
  /** Sample instead of taking the most likely token (greedy). */
  doSample?: boolean;
  /** Defaults as in transformers: temperature 1, topK 50, topP 1, repetitionPenalty 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /**
   * Rows that produce one of these stop; later positions get padTokenId. Undefined: the
   * generationConfig's eos ids; null: none.
   */
  eosTokenId?: number | number[] | null;
  /** Default: the generationConfig's pad id, else the first eos id, else 0. */
  padTokenId?: number;
  /**
   * A row stops once the text of its new tokens contains one of these; the token that
   * completed it is kept, later positions get padTokenId. Needs `tokenizer`.
   */
  stopStrings?: string[];
  /** Decodes new tokens for stopStrings (a Tokenizer from io/tokenizer.ts will do). */
  tokenizer?: TokenDecoder;
  /** [B, T] with 0 on (left) padding; default all ones. */
  attentionMask?: Tensor | null;
  streamer?: TokenStreamer | ((tokens: number[]) => void);
  seed?: number | bigint;
  generator?: Generator;
  /** Called when generation stops early at the model's context; default console.warn. */
  onWarning?: (message: string) => void;
}

/**
 * Autoregressive decoding with a KV cache: the prompt is run once, then one token per step.
 * Batches use left padding and an attention mask; positions count real tokens only, as
 * transformers does. The model runs in eval mode without gradients, and its previous
 * train/eval mode is restored afterwards. Returns [B, T + new] int64 ids.
 *
 * Options left undefined come from `model.generationConfig`. A model with learned
 * positions (`maxPositions`, GPT-2's n_positions) stops when a row would need a position
 * past it: it returns what it produced (no row longer than maxPositions tokens) and calls
 * onWarning once.
 */
export function generate(
  model: CausalLanguageModel,
  inputIds: Tensor,
  options: GenerateOptions = {},
): Tensor {
  if (inputIds.ndim !== 2 || (inputIds.dtype !== "int64" && inputIds.dtype !== "int32")) {
    throw new ShapeError(
      "generate",
      `expected inputIds [batch, seq] of int64 or int32, got ${fmt(inputIds.shape)} ${inputIds.dtype}`,
    );
  }
  const [batch, seq] = inputIds.shape;
  const config = model.generationConfig ?? {};
  const o = withDefaults(options, config);
  const warn = options.onWarning ?? console.warn;
  const maxNew = resolveMaxNew(o, seq);
  const sampling = resolveSampling(o, options);
  const eos = new Set(o.eosTokenId == null ? [] : [o.eosTokenId].flat());
  const pad = o.padTokenId ?? (eos.size > 0 ? [...eos][0] : 0);
  const stop = resolveStopStrings(options, config, warn);
  const limit = model.maxPositions ?? null;
  const rng = o.doSample ? generatorFor(options) : null;
  const put =
    typeof options.streamer === "function"
      ? options.streamer
      : options.streamer?.put.bind(options.streamer);
  const wasTraining = model.training;
  model.train(false);
  try {
    return noGrad(() => {
      let mask =
        options.attentionMask == null ? ones2d(batch, seq) : options.attentionMask.to("int64");
      if (mask.shape[0] !== batch || mask.shape[1] !== seq) {
        throw new ShapeError(
          "generate",
          `attentionMask of shape ${fmt(mask.shape)} does not match inputIds ${fmt(inputIds.shape)}`,
        );
      }
      const history: number[][] = rowsOf(inputIds.to("int64"));
      // Position of each row's next token = number of real tokens so far.
      const maskRows = rowsOf(mask);
      const count = maskRows.map((r) => r.reduce((a, b) => a + b, 0));
      const longest = Math.max(0, ...count);
      if (limit !== null && longest > limit) {
        throw new ValueError(
          `generate: the prompt has ${longest} tokens, more than the model's context of ${limit} tokens`,
        );
      }
      const positions = Tensor.from(
        maskRows.map((r) => {
          let c = 0;
          return r.map((m) => (m ? c++ : 1));
        }),
        [batch, seq],
        "int64",
      );
      const cache = model.newCache();
      let logits = model.forward({
        inputIds: inputIds.to("int64"),
        attentionMask: mask,
        positionIds: positions,
        pastKeyValues: cache,
      }).logits;
      const done = new Array<boolean>(batch).fill(false);
      const produced: number[][] = Array.from({ length: batch }, () => []);
      // The token made at `step` makes a row count + step + 1 tokens long: it must fit the context.
      const fits = (step: number) =>
        limit === null || Math.max(...count.filter((_, b) => !done[b])) + step + 1 <= limit;
      for (let step = 0; step < maxNew; step++) {
        if (!fits(step)) {
          warn(
            `generate: stopped at the model's context of ${limit} tokens, after ${step} of ${maxNew} new tokens`,
          );
          break;
        }
        const last = slice(logits, 1, logits.shape[1] - 1).toFloat32Array();
        const vocab = logits.shape[2];
        const next = new Array<number>(batch);
        for (let b = 0; b < batch; b++) {
          if (done[b]) {
            next[b] = pad;
            continue;
          }
          const scores = Array.from(last.subarray(b * vocab, (b + 1) * vocab));
          next[b] = pickToken(scores, history[b], sampling, rng);
          if (eos.has(next[b])) done[b] = true;
        }
        next.forEach((t, b) => {
          produced[b].push(t);
          history[b].push(t);
        });
        if (stop !== null) {
          for (let b = 0; b < batch; b++) if (!done[b] && stop.matches(produced[b])) done[b] = true;
        }
        put?.(next);
        if (done.every(Boolean) || step === maxNew - 1) break;
        // Past the context: the loop's check warns and stops, without a forward whose logits go unused.
        if (!fits(step + 1)) continue;
        mask = concat([mask, ones2d(batch, 1)], 1);
        // Finished rows are fed a dummy token at a valid position: their outputs are unused,
        // and their pad id need not be in the vocabulary nor their position in the context.
        const pos = Tensor.from(
          count.map((c, b) => [done[b] ? 0 : c + produced[b].length - 1]),
          [batch, 1],
          "int64",
        );
        logits = model.forward({
          inputIds: Tensor.from(
            next.map((t, b) => [done[b] ? 0 : t]),
            [batch, 1],
            "int64",
          ),
          attentionMask: mask,
          positionIds: pos,
          pastKeyValues: cache,
        }).logits;
      }
      if (typeof options.streamer === "object") options.streamer.end();
      const width = produced[0]?.length ?? 0;
      const out = inputIds.to("int64").toFlatNumbers();
      const rows = Array.from({ length: batch }, (_, b) => [
        ...out.slice(b * seq, (b + 1) * seq),
        ...produced[b],
      ]);
      return Tensor.from(rows.flat(), [batch, seq + width], "int64");
    });
  } finally {
    model.train(wasTraining);
  }
}

/** The caller's options, with the generation config's values where the caller left one undefined. */
function withDefaults(o: GenerateOptions, g: GenerationConfig): GenerateOptions {
  const pick = <T>(mine: T | undefined, theirs: T | undefined) =>
    mine !== undefined ? mine : theirs;
  const fromCaller = o.maxNewTokens !== undefined || o.maxLength !== undefined;
  return {
    maxNewTokens: fromCaller ? o.maxNewTokens : g.maxNewTokens,
    maxLength: fromCaller ? o.maxLength : g.maxLength,
    doSample: pick(o.doSample, g.doSample),
    temperature: pick(o.temperature, g.temperature),
    topK: pick(o.topK, g.topK),
    topP: pick(o.topP, g.topP),
    repetitionPenalty: pick(o.repetitionPenalty, g.repetitionPenalty),
    eosTokenId: pick(o.eosTokenId, g.eosTokenId),
    padTokenId: pick(o.padTokenId, g.padTokenId),
  };
}

function resolveMaxNew(o: GenerateOptions, seq: number): number {
  if (o.maxNewTokens !== undefined) {
    const n = o.maxNewTokens;
    if (!Number.isInteger(n) || n < 0)
      throw new ValueError(`generate: maxNewTokens must be a non-negative integer, got ${n}`);
    return n;
  }
  if (o.maxLength !== undefined) {
    const n = o.maxLength;
    if (!Number.isInteger(n) || n < 0)
      throw new ValueError(`generate: maxLength must be a non-negative integer, got ${n}`);
    // As transformers: max_length counts the prompt, and must leave room for a new token.
    if (seq >= n)
      throw new ValueError(
        `generate: the input has ${seq} tokens, but maxLength (max_length) is ${n}; raise it or set maxNewTokens`,
      );
    return n - seq;
  }
  return 20;
}

function resolveStopStrings(
  o: GenerateOptions,
  g: GenerationConfig,
  warn: (message: string) => void,
): StopStringMatcher | null {
  if (o.stopStrings !== undefined) {
    if (o.stopStrings.length === 0) return null;
    if (o.tokenizer === undefined)
      throw new ValueError(
        "generate: stopStrings need a tokenizer to decode the new tokens; pass `tokenizer`",
      );
    return new StopStringMatcher(o.stopStrings, o.tokenizer);
  }
  if (g.stopStrings === undefined || g.stopStrings.length === 0) return null;
  if (o.tokenizer === undefined) {
    warn(
      `generate: the generation config's stop_strings ${JSON.stringify(g.stopStrings)} are ignored: no tokenizer was given`,
    );
    return null;
  }
  return new StopStringMatcher(g.stopStrings, o.tokenizer);
}

interface Sampling {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
}

/**
 * Values the caller passed are always checked; values from the generation config only when
 * sampling uses them (greedy configs may carry, say, temperature 0).
 */
function resolveSampling(o: GenerateOptions, explicit: GenerateOptions): Sampling {
  const s = {
    doSample: o.doSample ?? false,
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 50,
    topP: o.topP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? 1,
  };
  const check = (key: keyof GenerateOptions) => s.doSample || explicit[key] !== undefined;
  if (check("temperature") && !(s.temperature > 0))
    throw new ValueError(`generate: temperature must be > 0, got ${s.temperature}`);
  if (check("topK") && (!Number.isInteger(s.topK) || s.topK < 0))
    throw new ValueError(`generate: topK must be a non-negative integer, got ${s.topK}`);
  if (check("topP") && !(s.topP > 0 && s.topP <= 1))
    throw new ValueError(`generate: topP must be in (0, 1], got ${s.topP}`);
  if (!(s.repetitionPenalty > 0))
    throw new ValueError(`generate: repetitionPenalty must be > 0, got ${s.repetitionPenalty}`);
  return s;
}

/** transformers' order: repetition penalty, then (sampling only) temperature, top-k, top-p. */
function pickToken(
  scores: number[],
  history: number[],
  s: Sampling,
  rng: Generator | null,
): number {
  if (s.repetitionPenalty !== 1) {
    for (const t of new Set(history)) {
      if (t >= 0 && t < scores.length)
        scores[t] =
          scores[t] < 0 ? scores[t] * s.repetitionPenalty : scores[t] / s.repetitionPenalty;
    }
  }
  if (!s.doSample || rng === null) return argmax(scores);
  for (let i = 0; i < scores.length; i++) scores[i] /= s.temperature;
  if (s.topK > 0 && s.topK < scores.length) {
    const kth = [...scores].sort((a, b) => b - a)[s.topK - 1];
    for (let i = 0; i < scores.length; i++) if (scores[i] < kth) scores[i] = -Infinity;
  }
  const max = Math.max(...scores);
  const probs = scores.map((v) => Math.exp(v - max));
  const z = probs.reduce((a, b) => a + b, 0);
  for (let i = 0; i < probs.length; i++) probs[i] /= z;
  if (s.topP < 1) {
    // Drop the least likely tokens whose total mass stays within 1 - topP; keep at least one.
    const order = probs.map((_, i) => i).sort((a, b) => probs[a] - probs[b]);
    let cum = 0;
    for (let j = 0; j < order.length - 1; j++) {
      cum += probs[order[j]];
      if (cum > 1 - s.topP) break;
      probs[order[j]] = 0;
    }
    const z2 = probs.reduce((a, b) => a + b, 0);
    for (let i = 0; i < probs.length; i++) probs[i] /= z2;
  }
  const u = rng.nextFloat53();
  let acc = 0;
  for (let i = 0; i < probs.length; i++) {
    acc += probs[i];
    if (u < acc) return i;
  }
  return argmax(probs);
}

function argmax(v: number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function ones2d(b: number, t: number): Tensor {
  return Tensor.from(new Array(b * t).fill(1), [b, t], "int64");
}

function rowsOf(t: Tensor): number[][] {
  const v = t.toFlatNumbers();
  const w = t.shape[1];
  return Array.from({ length: t.shape[0] }, (_, b) => v.slice(b * w, (b + 1) * w));
}
