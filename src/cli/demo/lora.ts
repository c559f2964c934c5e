import type { AdapterConfigInit } from "../../peft/registry.js";

/**
 * The adapter the embedded default trains: `peft demo` and the browser demo page
 * (web/train.js, which reaches it through the package's exports) use the same settings.
 */
export const DEMO_LORA: Readonly<AdapterConfigInit> = Object.freeze({
  peftType: "LORA",
  r: 16,
  loraAlpha: 32,
  targetModules: "all-linear",
  taskType: "CAUSAL_LM",
});
