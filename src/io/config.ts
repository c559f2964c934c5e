import { FileFormatError } from "../errors.js";
import type { ModelFiles } from "./files/model-files.js";

/**
 * The index of the first byte that breaks UTF-8 in `bytes` (a bad lead byte, a missing or
 * stray continuation byte, an overlong form, a surrogate, a code point past U+10FFFF),
 * or -1 when the bytes are valid UTF-8.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [n, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [n, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = b & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** Parses a JSON file's bytes: UTF-8 (a leading BOM is dropped, as Python's json tools allow). */
export function parseJsonText(path: string, bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new FileFormatError(path, "invalid JSON: the file is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FileFormatError(path, `invalid JSON: ${(e as Error).message}`);
  }
}

/** Parses one JSON file of a model's files; a missing one is a FileNotFoundError. */
export function readJsonIn(files: ModelFiles, name: string): unknown {
  return parseJsonText(files.describe(name), files.read(name));
}

/**
 * Typed access to the fields of a config.json. Every getter names the file and the field
 * and says what was expected and what was found.
 */
export class ConfigReader {
  readonly raw: Record<string, unknown>;

  constructor(
    readonly file: string,
    json: unknown,
  ) {
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new FileFormatError(
        file,
        `expected a JSON object, found ${Array.isArray(json) ? "an array" : typeof json}`,
      );
    }
    this.raw = json as Record<string, unknown>;
  }

  /** config.json, or another JSON file, of a model's files. */
  static fromFiles(files: ModelFiles, name = "config.json"): ConfigReader {
    return new ConfigReader(files.describe(name), readJsonIn(files, name));
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  private fail(key: string, expected: string): never {
    const v = this.raw[key];
    const found = v === undefined ? "nothing (the field is missing)" : `${JSON.stringify(v)}`;
    throw new FileFormatError(this.file, `field "${key}" should be ${expected}, found ${found}`);
  }

  int(key: string, fallback?: number, min = 0): number {
    const v = this.raw[key] ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) < min) this.fail(key, `an integer >= ${min}`);
    return v as number;
  }

  number(key: string, fallback?: number): number {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(key, "a finite number");
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "boolean") this.fail(key, "true or false");
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "string") this.fail(key, "a string");
    return v;
  }

  /** A string that must be one of `allowed`. */
  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "string" || !allowed.includes(v as T))
      this.fail(key, `one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
    return v as T;
  }

  /** Fails when the field is present and not null: for options peft-ts does not implement. */
  unsupported(key: string, why: string): void {
    if (this.has(key)) {
      throw new FileFormatError(
        this.file,
        `field "${key}" = ${JSON.stringify(this.raw[key])} is not supported: ${why}`,
      );
    }
  }
}
