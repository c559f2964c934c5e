import { BackendError } from "../errors.js";
import type { Backend } from "./backend.js";
import { nativeBackend } from "./native/index.js";
import { referenceBackend } from "./reference/index.js";
import { wasmBackend } from "./wasm/index.js";

export type BackendName = "reference" | "wasm" | "native";

const factories = new Map<string, () => Backend>([["reference", () => referenceBackend]]);
if (nativeBackend !== null) factories.set("native", () => nativeBackend as Backend);
if (wasmBackend !== null) factories.set("wasm", () => wasmBackend as Backend);
let active: Backend | null = null;

/** Makes a backend selectable by name (faster backends register themselves when they load). */
export function registerBackend(name: string, factory: () => Backend): void {
  factories.set(name, factory);
}

export function availableBackends(): string[] {
  return [...factories.keys()];
}

/**
 * The backend every op runs on: PEFT_BACKEND if set, else native when its addon loaded,
 * else wasm when this engine runs WebAssembly SIMD, else reference.
 */
export function getBackend(): Backend {
  if (active === null) {
    const forced = globalThis.process?.env?.PEFT_BACKEND;
    active = forced ? createBackend(forced) : (nativeBackend ?? wasmBackend ?? referenceBackend);
  }
  return active;
}

export function setBackend(name: string): Backend {
  active = createBackend(name);
  return active;
}

function createBackend(name: string): Backend {
  const factory = factories.get(name);
  if (factory === undefined) {
    throw new BackendError(
      `unknown or unavailable backend "${name}": expected one of ${availableBackends()
        .map((n) => `"${n}"`)
        .join(", ")}`,
    );
  }
  return factory();
}
