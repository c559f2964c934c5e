import { pending } from "./pending.js";
export const norm = pending;
export const normGrad = pending;
