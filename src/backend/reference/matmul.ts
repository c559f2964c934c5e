import { pending } from "./pending.js";
export const matmul = pending;
