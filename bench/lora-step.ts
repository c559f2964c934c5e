import * as peft from "../src/index.js";
import type { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { loraStep as loraStepOn } from "../web/bench-step.js";
import { timeIt } from "./util.js";

/**
 * One LoRA training step (r=16 on q, k, v, o; forward, backward, AdamW), ready to repeat:
 * the step the browser bench times in a page (web/bench-step.js), here in Node.
 */
export function loraStep(model: DecoderForCausalLM, batch: number, seq: number): () => void {
  return loraStepOn(peft, model, batch, seq);
}

/** Median seconds of a LoRA training step over `runs` steps. */
export function loraStepSeconds(
  model: DecoderForCausalLM,
  batch: number,
  seq: number,
  runs: number,
): number {
  const step = loraStep(model, batch, seq);
  return timeIt(step, runs, 0);
}
