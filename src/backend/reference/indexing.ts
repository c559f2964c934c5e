import { pending } from "./pending.js";
export const gather = pending;
export const scatterAdd = pending;
export const embedding = pending;
export const embeddingGrad = pending;
