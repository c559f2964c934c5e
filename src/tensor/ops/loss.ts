import type { Tensor } from "../tensor.js";
export function crossEntropy(..._a: unknown[]): Tensor { throw new Error("pending"); }
