// Runs timeLoraSteps (or, with `probe`, probeOperations) in a worker, where the wasm
// kernels may use two threads once their workers have started (startBackend).

import { probeOperations } from "./bench-probe.js";
import { timeLoraSteps } from "./bench-step.js";
import * as p from "./peft.js";

addEventListener("message", async ({ data }) => {
  try {
    const info = await p.startBackend();
    postMessage({ info, ...(data.probe ? { probe: probeOperations(p) } : timeLoraSteps(p, data)) });
  } catch (e) {
    postMessage({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
});
