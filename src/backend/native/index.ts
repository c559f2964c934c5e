import type { Backend } from "../backend.js";
import { makeKernels } from "../c-kernels/index.js";
import { referenceBackend } from "../reference/index.js";
import { type Addon, addon } from "./addon.js";
import { makeLinear4bit, makeMatmul, makePacked } from "./matmul.js";

/**
 * The native backend when the addon loaded: oneDNN GEMMs and C kernels (csrc/) for the
 * kernels that dominate a training step, the reference kernels for the rest.
 */
export const nativeBackend: Backend | null = addon === null ? null : makeNative(addon);

/** What the addon reports about the machine: oneDNN's instruction set, the kernel threads, bfloat16. */
export const nativeInfo = (): ReturnType<Addon["info"]> | null => addon?.info() ?? null;

/** The native backend on an addon (tests pass one whose outputs start as garbage). */
export function makeNative(a: Addon): Backend {
  return {
    ...referenceBackend,
    ...makeKernels(a),
    name: "native",
    matmul: makeMatmul(a),
    ...makePacked(a),
    ...makeLinear4bit(a),
  };
}
