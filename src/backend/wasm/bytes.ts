import { readFileSync } from "node:fs";

/** A compiled kernel module's bytes, read from beside this file, or null when it is missing. */
export function wasmBytes(name: string): Uint8Array | null {
  try {
    return readFileSync(new URL(`./${name}`, import.meta.url));
  } catch {
    return null;
  }
}
