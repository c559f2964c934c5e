import { pending } from "./pending.js";
export const rope = pending;
