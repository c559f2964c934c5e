// Runs timeLoraSteps (or, with `probe`, probeOperations) in a worker, where the wasm
// kernels may use two threads.

import { probeOperations } from "./bench-probe.js";
import { timeLoraSteps } from "./bench-step.js";
import * as p from "./peft.js";

addEventListener("message", ({ data }) => {
  try {
    const info = p.backendInfo();
    postMessage({ info, ...(data.probe ? { probe: probeOperations(p) } : timeLoraSteps(p, data)) });
  } catch (e) {
    postMessage({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
