import type { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { getPeftModel } from "../src/peft/peft-model.js";
import { randint } from "../src/tensor/creation.js";
import { AdamW } from "../src/train/optim/adamw.js";
import { timeIt } from "./util.js";

/** One LoRA training step (r=16 on q, k, v, o; forward, backward, AdamW), ready to repeat. */
export function loraStep(model: DecoderForCausalLM, batch: number, seq: number): () => void {
  const peft = getPeftModel(model, {
    peftType: "LORA",
    r: 16,
    loraAlpha: 32,
    targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"],
  });
  peft.train();
  const opt = new AdamW(
    model.parameters().filter((p) => p.requiresGrad),
    { lr: 1e-4 },
  );
  const ids = randint(0, model.config.vocabSize, [batch, seq], { seed: 1 });
  return () => {
    peft.forward({ inputIds: ids, labels: ids }).loss!.backward();
    opt.step();
    opt.zeroGrad();
  };
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
