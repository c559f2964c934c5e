import { readFileSync } from "node:fs";
import { FileNotFoundError } from "../errors.js";
import { parseJsonText } from "./config.js";

/** Reads a UTF-8 file; a missing one is a FileNotFoundError saying what it is. */
export function readTextFile(path: string, what = "file"): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new FileNotFoundError(path, `${what} not found`);
    throw e;
  }
}

/** Reads a file's bytes; a missing one is a FileNotFoundError saying what it is. */
export function readBinaryFile(path: string, what = "file"): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new FileNotFoundError(path, `${what} not found`);
    throw e;
  }
}

/** Reads a JSON file, with typed errors for a missing file or bad JSON. */
export function readJsonFile(path: string): unknown {
  return parseJsonText(path, readBinaryFile(path));
}
