// Saves LoRA adapters into one directory for the atomic-save tests, from a separate
// process that the tests kill. Usage:
//   node adapter-writer.mjs DIR once R ALPHA [KILL_AT_STEP]
//   node adapter-writer.mjs DIR loop            (alternates r=4/alpha=8 and r=8/alpha=16)
// lora_A is filled with 1 and lora_B with alpha/1000, so a reader can tell whether the
// config and the weights it got come from the same save.

import { setSaveHook, writeAdapter } from "../../dist/peft/save-load.js";
import { LoraConfig } from "../../dist/peft/tuners/lora/config.js";
import { full } from "../../dist/tensor/creation.js";

const [dir, mode, rArg, alphaArg, killAt] = process.argv.slice(2);
const prefix = "base_model.model.model.layers.0.self_attn.q_proj";

function save(r, alpha) {
  const config = new LoraConfig({ r, loraAlpha: alpha, targetModules: ["q_proj"] });
  const tensors = new Map([
    [`${prefix}.lora_A.weight`, full([r, 4096], 1)],
    [`${prefix}.lora_B.weight`, full([4096, r], alpha / 1000)],
  ]);
  writeAdapter(dir, config, tensors);
}

if (killAt) {
  setSaveHook((step) => {
    if (step === killAt) process.kill(process.pid, "SIGKILL");
  });
}
if (mode === "once") save(Number(rArg), Number(alphaArg));
else for (let i = 0; ; i++) save(i % 2 === 0 ? 4 : 8, i % 2 === 0 ? 8 : 16);
