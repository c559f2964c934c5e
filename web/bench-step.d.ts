import type * as Peft from "../src/index.js";
import type { DecoderConfig } from "../src/models/decoder/config.js";
import type { DecoderForCausalLM } from "../src/models/decoder/model.js";

// Types of bench-step.js, which the page's bench worker loads without a build.

export function loraStep(
  p: typeof Peft,
  model: DecoderForCausalLM,
  batch: number,
  seq: number,
): () => void;

export function timeLoraSteps(
  p: typeof Peft,
  options: { config: DecoderConfig; dtype?: string; batch?: number; seq?: number; runs?: number },
): { seconds: number; all: number[] };
