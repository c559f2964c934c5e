import { pending } from "./pending.js";
export const permute = pending;
export const slice = pending;
export const sliceScatter = pending;
export const concat = pending;
