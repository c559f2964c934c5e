import type * as Node from "./bytes.js";
import { EMBEDDED } from "./embedded.js";

// In browsers the modules travel inside the JavaScript (base64, written by
// scripts/copy-assets.mjs at build time): no bundler asset rule, no fetch before the first
// kernel, and a synchronous compile, which browsers allow for modules this size.

export const wasmBytes: typeof Node.wasmBytes = (name) => {
  const text = EMBEDDED[name];
  if (text === undefined) return null;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
};
