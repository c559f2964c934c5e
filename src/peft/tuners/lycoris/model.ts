import { Conv1D, Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { patternValue } from "../../targeting.js";
import { adapterDTypeFor } from "../adapter-layer.js";
import type { InjectOptions } from "../tuner.js";
import type { LycorisSettings } from "./layer.js";

export const lycorisWraps = (m: Module) =>
  m instanceof Linear || m instanceof Linear4bit || m instanceof Conv1D;

interface LycorisConfigValues {
  r: number;
  alpha: number;
  rankDropout: number;
  moduleDropout: number;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
}

/** A layer's settings: rank and alpha from the patterns (PEFT's rule), dropouts, dtype. */
export function lycorisSettings(
  config: LycorisConfigValues,
  name: string,
  base: Parameters<typeof adapterDTypeFor>[0],
  options: InjectOptions,
): LycorisSettings {
  return {
    r: patternValue(config.rankPattern, name, config.r),
    alpha: patternValue(config.alphaPattern, name, config.alpha),
    rankDropout: config.rankDropout,
    moduleDropout: config.moduleDropout,
    dtype: adapterDTypeFor(base, options),
  };
}
