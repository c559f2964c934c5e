import type * as Node from "./addon.js";

export type { Addon } from "./addon.js";

// Browsers load no Node-API addon: the wasm and reference backends run there.
export const addon: typeof Node.addon = null;
