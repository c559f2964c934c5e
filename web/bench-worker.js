// Runs timeLoraSteps in a worker (where the wasm kernels may use two threads).

import { timeLoraSteps } from "./bench-step.js";
import * as p from "./peft.js";

addEventListener("message", ({ data }) => {
  try {
    const info = p.backendInfo();
    postMessage({ info, ...timeLoraSteps(p, data) });
  } catch (e) {
    postMessage({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
