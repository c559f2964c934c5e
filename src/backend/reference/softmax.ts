import { pending } from "./pending.js";
export const softmax = pending;
export const softmaxGrad = pending;
