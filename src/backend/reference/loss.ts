import { pending } from "./pending.js";
export const crossEntropy = pending;
export const crossEntropyGrad = pending;
