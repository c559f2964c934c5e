import type { Backend } from "../backend.js";
import { makeAttention } from "./attention.js";
import { makeElementwise } from "./elementwise.js";
import type { KernelHost } from "./host.js";
import { makeLayout } from "./layout.js";
import { makeLoss } from "./loss.js";
import { makeNorm } from "./norm.js";
import { makeQuant } from "./quant.js";

/** Every kernel the C kernels serve, on a host (the native addon or the wasm module). */
export function makeKernels(host: KernelHost): Partial<Backend> {
  return {
    ...makeElementwise(host),
    ...makeLoss(host),
    ...makeNorm(host),
    ...makeQuant(host),
    ...makeLayout(host),
    ...makeAttention(host),
  };
}
