import type { Tensor } from "../tensor.js";
export function scaledDotProductAttention(..._a: unknown[]): Tensor { throw new Error("pending"); }
export function rope(..._a: unknown[]): Tensor { throw new Error("pending"); }
export function rotaryCosSin(..._a: unknown[]): { cos: Tensor; sin: Tensor } { throw new Error("pending"); }
