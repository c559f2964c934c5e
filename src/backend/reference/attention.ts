import { pending } from "./pending.js";
export const attention = pending;
export const attentionGrad = pending;
