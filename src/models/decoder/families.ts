import type { ConfigReader } from "../../io/config.js";
import { type DecoderConfig, llamaConfig } from "./config.js";
import { readRope } from "./rope.js";

/**
 * One reader per model_type. Each gives the family's defaults (those of its transformers
 * config class) and sets the switches where it differs from Llama.
 */
interface Family {
  /** transformers' defaults for fields a config.json may leave out. */
  defaults: { maxPositions: number; rmsNormEps: number; tie: boolean; headDim?: number };
  read(c: ConfigReader, base: DecoderConfig): Partial<DecoderConfig>;
  /** rope_scaling type names this family renames (Phi-3 calls LongRoPE "su" or "yarn"). */
  ropeRenames?: Record<string, string>;
}

const ACTIVATIONS = ["silu", "gelu_pytorch_tanh", "gelu"] as const;

/** Dropout the decoder does not implement: refused unless 0, so training is not silently different. */
function noDropout(c: ConfigReader, ...keys: string[]): void {
  for (const k of keys)
    if (c.has(k) && c.number(k) !== 0)
      c.unsupported(k, "dropout inside the decoder is not implemented; set it to 0");
}

/** sliding_window, the family's default when the field is missing; null means no window. */
function slidingWindow(c: ConfigReader, fallback: number | null): number | null {
  if (c.raw.sliding_window === undefined) return fallback;
  return c.has("sliding_window") ? c.int("sliding_window", undefined, 1) : null;
}

/** Mistral and Phi-3 window every layer. */
function everyLayer(c: ConfigReader, layers: number, fallback: number | null): (number | null)[] {
  return new Array(layers).fill(slidingWindow(c, fallback));
}

const llama: Family = {
  defaults: { maxPositions: 2048, rmsNormEps: 1e-6, tie: false },
  read(c) {
    if (c.has("pretraining_tp") && c.int("pretraining_tp") !== 1)
      c.unsupported("pretraining_tp", "must be 1");
    const bias = c.bool("attention_bias", false);
    return { qkvBias: bias, oBias: bias, mlpBias: c.bool("mlp_bias", false) };
  },
};

const qwen2: Family = {
  defaults: { maxPositions: 32768, rmsNormEps: 1e-6, tie: false },
  read(c, base) {
    // transformers windows the layers from max_window_layers on, and only with use_sliding_window.
    const on = c.bool("use_sliding_window", false) && c.has("sliding_window");
    const from = c.int("max_window_layers", 28);
    const w = on ? c.int("sliding_window", undefined, 1) : null;
    return {
      qkvBias: true,
      slidingWindows: Array.from({ length: base.numLayers }, (_, i) => (i >= from ? w : null)),
    };
  },
};

const mistral: Family = {
  defaults: { maxPositions: 4096 * 32, rmsNormEps: 1e-6, tie: false },
  read: (c, base) => ({ slidingWindows: everyLayer(c, base.numLayers, 4096) }),
};

const gemma: Family = {
  defaults: { maxPositions: 8192, rmsNormEps: 1e-6, tie: true, headDim: 256 },
  read(c) {
    return {
      // transformers 4.46 reads hidden_activation and ignores hidden_act.
      hiddenAct: c.oneOf("hidden_activation", ACTIVATIONS, "gelu_pytorch_tanh"),
      qkvBias: c.bool("attention_bias", false),
      oBias: c.bool("attention_bias", false),
      normPlusOne: true,
      scaleEmbeddings: true,
    };
  },
};

const gemma2: Family = {
  defaults: gemma.defaults,
  read(c, base) {
    const cap = (key: string, fallback: number) =>
      c.raw[key] === undefined ? fallback : c.has(key) ? c.number(key) : null;
    const window = slidingWindow(c, 4096);
    return {
      ...gemma.read(c, base),
      sandwichNorms: true,
      attentionScale: c.number("query_pre_attn_scalar", 224) ** -0.5,
      attnLogitSoftcap: cap("attn_logit_softcapping", 50),
      finalLogitSoftcap: cap("final_logit_softcapping", 30),
      // Layers 0, 2, 4... slide; the odd ones attend to the whole context.
      slidingWindows: Array.from({ length: base.numLayers }, (_, i) =>
        i % 2 === 0 ? window : null,
      ),
    };
  },
};

const phi3: Family = {
  defaults: { maxPositions: 4096, rmsNormEps: 1e-5, tie: false },
  ropeRenames: { su: "longrope", yarn: "longrope" },
  read(c, base) {
    noDropout(c, "resid_pdrop", "embd_pdrop");
    return { fusedProjections: true, slidingWindows: everyLayer(c, base.numLayers, null) };
  },
};

export const DECODER_FAMILIES: Readonly<Record<string, Family>> = {
  llama,
  qwen2,
  mistral,
  gemma,
  gemma2,
  phi3,
};

/** The decoder configuration of a config.json whose model_type is one of DECODER_FAMILIES. */
export function parseDecoderConfig(c: ConfigReader): DecoderConfig {
  const modelType = c.oneOf("model_type", Object.keys(DECODER_FAMILIES));
  const family = DECODER_FAMILIES[modelType];
  noDropout(c, "attention_dropout");
  const hiddenSize = c.int("hidden_size", undefined, 1);
  const numHeads = c.int("num_attention_heads", undefined, 1);
  const numKVHeads = c.int("num_key_value_heads", numHeads, 1);
  if (numHeads % numKVHeads !== 0)
    c.unsupported("num_key_value_heads", `${numHeads} attention heads are not a multiple of it`);
  // Phi-3 has no head_dim field: always hidden / heads.
  const headDim =
    modelType === "phi3"
      ? Math.floor(hiddenSize / numHeads)
      : c.int("head_dim", family.defaults.headDim ?? Math.floor(hiddenSize / numHeads), 2);
  const maxPositionEmbeddings = c.int("max_position_embeddings", family.defaults.maxPositions, 1);
  const base = llamaConfig({
    modelType,
    vocabSize: c.int("vocab_size", undefined, 1),
    hiddenSize,
    intermediateSize: c.int("intermediate_size", undefined, 1),
    numLayers: c.int("num_hidden_layers", undefined, 1),
    numHeads,
    numKVHeads,
    headDim,
    maxPositionEmbeddings,
    rmsNormEps: c.number("rms_norm_eps", family.defaults.rmsNormEps),
    rope: readRope(
      c,
      headDim,
      maxPositionEmbeddings,
      c.number("rope_theta", 10000),
      family.ropeRenames,
    ),
    tieWordEmbeddings: c.bool("tie_word_embeddings", family.defaults.tie),
    hiddenAct: c.oneOf("hidden_act", ACTIVATIONS, "silu"),
  });
  return { ...base, ...family.read(c, base) };
}
