import { FileFormatError } from "../../errors.js";
import type { ConfigReader } from "../../io/config.js";
import { rotaryCosSin } from "../../tensor/ops/attention.js";
import type { Tensor } from "../../tensor/tensor.js";

/** config.json's rope_scaling, as transformers 4.46 computes each type's frequencies. */
export type RopeScaling =
  | { type: "default" }
  | { type: "linear"; factor: number }
  /** NTK-aware: the base grows once positions pass maxPositions. */
  | { type: "dynamic"; factor: number; maxPositions: number }
  | {
      type: "yarn";
      factor: number;
      maxPositions: number;
      attentionFactor: number;
      betaFast: number;
      betaSlow: number;
    }
  /** Phi-3: short factors up to originalMax positions, long ones beyond. */
  | {
      type: "longrope";
      shortFactor: number[];
      longFactor: number[];
      originalMax: number;
      attentionFactor: number;
    }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMax: number;
    };

export interface RopeConfig {
  theta: number;
  /** Rotated dimensions: the head dim. */
  dim: number;
  scaling: RopeScaling;
}

const f32 = Math.fround;

/** Reads rope_theta and rope_scaling; the legacy key "type" is read like "rope_type". */
export function readRope(
  c: ConfigReader,
  dim: number,
  maxPositions: number,
  theta: number,
  renames: Readonly<Record<string, string>> = {},
): RopeConfig {
  const file = c.file;
  const raw = c.has("rope_scaling") ? c.raw.rope_scaling : null;
  if (c.has("partial_rotary_factor") && c.number("partial_rotary_factor") !== 1)
    c.unsupported(
      "partial_rotary_factor",
      "only rotary embeddings over the whole head are implemented",
    );
  if (raw === null) return { theta, dim, scaling: { type: "default" } };
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new FileFormatError(
      file,
      `field "rope_scaling" must be an object or null, got ${JSON.stringify(raw)}`,
    );
  const s = raw as Record<string, unknown>;
  const named = s.rope_type ?? s.type;
  if (typeof named !== "string")
    throw new FileFormatError(
      file,
      `rope_scaling needs a string "rope_type" (or "type"), got ${JSON.stringify(named)}`,
    );
  const type = renames[named] ?? named;
  const num = (key: string, fallback?: number): number => {
    const v = s[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new FileFormatError(
        file,
        `rope_scaling "${type}" needs a number "${key}", got ${JSON.stringify(s[key])}`,
      );
    return v;
  };
  const factors = (key: string): number[] => {
    const v = s[key];
    if (!Array.isArray(v) || v.length !== dim / 2 || v.some((x) => typeof x !== "number"))
      throw new FileFormatError(
        file,
        `rope_scaling "${type}" needs "${key}" as ${dim / 2} numbers (head_dim / 2), got ${JSON.stringify(v)}`,
      );
    return v as number[];
  };
  switch (type) {
    case "default":
      return { theta, dim, scaling: { type } };
    case "linear":
      return { theta, dim, scaling: { type, factor: num("factor") } };
    case "dynamic":
      return { theta, dim, scaling: { type, factor: num("factor"), maxPositions } };
    case "yarn": {
      const factor = num("factor");
      return {
        theta,
        dim,
        scaling: {
          type,
          factor,
          maxPositions,
          attentionFactor: num("attention_factor", 0.1 * Math.log(factor) + 1),
          // transformers reads `or 32` / `or 1`: a 0 or null also takes the default.
          betaFast: num("beta_fast", 32) || 32,
          betaSlow: num("beta_slow", 1) || 1,
        },
      };
    }
    case "longrope": {
      const originalMax = c.has("original_max_position_embeddings")
        ? c.int("original_max_position_embeddings", undefined, 1)
        : num("original_max_position_embeddings");
      const scale = maxPositions / originalMax;
      const attentionFactor =
        scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(originalMax));
      return {
        theta,
        dim,
        scaling: {
          type,
          shortFactor: factors("short_factor"),
          longFactor: factors("long_factor"),
          originalMax,
          attentionFactor: num("attention_factor", attentionFactor),
        },
      };
    }
    case "llama3":
      return {
        theta,
        dim,
        scaling: {
          type,
          factor: num("factor"),
          lowFreqFactor: num("low_freq_factor"),
          highFreqFactor: num("high_freq_factor"),
          originalMax: num("original_max_position_embeddings"),
        },
      };
    default:
      throw new FileFormatError(
        file,
        `rope_scaling type "${named}" is not supported; supported: default, linear, dynamic, yarn, longrope, llama3`,
      );
  }
}

/** base^(-2i/dim) for i < dim/2, rounded as transformers computes it in float32. */
function defaultInvFreq(base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < out.length; i++) out[i] = 1 / f32(base ** f32((2 * i) / dim));
  return out;
}

/**
 * The inverse frequencies and the factor on cos and sin for a sequence whose largest
 * position is seqLen - 1 (dynamic and longrope depend on it; the others do not).
 */
export function ropeFrequencies(
  rope: RopeConfig,
  seqLen: number,
): { invFreq: Float32Array; attentionFactor: number } {
  const { theta, dim, scaling: s } = rope;
  switch (s.type) {
    case "default":
      return { invFreq: defaultInvFreq(theta, dim), attentionFactor: 1 };
    case "linear":
      return { invFreq: defaultInvFreq(theta, dim).map((x) => x / s.factor), attentionFactor: 1 };
    case "dynamic": {
      const len = Math.max(seqLen, s.maxPositions);
      const base =
        theta * ((s.factor * len) / s.maxPositions - (s.factor - 1)) ** (dim / (dim - 2));
      return { invFreq: defaultInvFreq(base, dim), attentionFactor: 1 };
    }
    case "yarn":
      return { invFreq: yarnInvFreq(theta, dim, s), attentionFactor: s.attentionFactor };
    case "longrope": {
      const ext = seqLen > s.originalMax ? s.longFactor : s.shortFactor;
      const invFreq = new Float32Array(dim / 2);
      for (let i = 0; i < invFreq.length; i++)
        invFreq[i] = 1 / f32(f32(ext[i]) * f32(theta ** f32((2 * i) / dim)));
      return { invFreq, attentionFactor: s.attentionFactor };
    }
    case "llama3":
      return { invFreq: llama3InvFreq(defaultInvFreq(theta, dim), s), attentionFactor: 1 };
  }
}

function yarnInvFreq(
  theta: number,
  dim: number,
  s: Extract<RopeScaling, { type: "yarn" }>,
): Float32Array {
  // The dimension at which a frequency turns `rotations` times over maxPositions.
  const correctionDim = (rotations: number) =>
    (dim * Math.log(s.maxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  const low = Math.max(Math.floor(correctionDim(s.betaFast)), 0);
  let high = Math.min(Math.ceil(correctionDim(s.betaSlow)), dim - 1);
  if (low === high) high += 0.001;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < out.length; i++) {
    const pos = f32(theta ** f32((2 * i) / dim));
    const extrapolation = f32(1 / pos);
    const interpolation = f32(1 / f32(s.factor * pos));
    const ramp = Math.min(Math.max(f32((i - low) / (high - low)), 0), 1);
    const keep = f32(1 - ramp);
    out[i] = f32(interpolation * f32(1 - keep)) + f32(extrapolation * keep);
  }
  return out;
}

function llama3InvFreq(
  inv: Float32Array,
  s: Extract<RopeScaling, { type: "llama3" }>,
): Float32Array {
  const lowWavelen = s.originalMax / s.lowFreqFactor;
  const highWavelen = s.originalMax / s.highFreqFactor;
  return inv.map((x) => {
    const wavelen = f32((2 * Math.PI) / x);
    if (wavelen < highWavelen) return x;
    if (wavelen > lowWavelen) return x / s.factor;
    const smooth = f32(
      f32(s.originalMax / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor),
    );
    return f32(f32((1 - smooth) * f32(x / s.factor)) + f32(smooth * x));
  });
}

/**
 * cos and sin tables [1 or B, T, dim] in float32 for positions [T] or [B, T]:
 * angles = position · inv_freq, emb = [angles, angles], both scaled by the attention
 * factor (YaRN, LongRoPE).
 */
export function rotaryTables(positions: Tensor, rope: RopeConfig): { cos: Tensor; sin: Tensor } {
  let last = 0;
  for (const p of positions.toFlatNumbers()) last = Math.max(last, p);
  const { invFreq, attentionFactor } = ropeFrequencies(rope, last + 1);
  return rotaryCosSin(positions, invFreq, attentionFactor);
}
