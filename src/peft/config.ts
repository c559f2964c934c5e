import { ValueError } from "../errors.js";
import { compilePattern } from "../io/pattern.js";

export type { PeftType } from "./registry.js";
export type TaskType =
  | "CAUSAL_LM"
  | "SEQ_CLS"
  | "SEQ_2_SEQ_LM"
  | "TOKEN_CLS"
  | "QUESTION_ANS"
  | "FEATURE_EXTRACTION";

export function camelToSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function snakeToCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** PEFT writes JSON with sorted keys and two-space indentation. */
export function toSortedJson(obj: Record<string, unknown>): string {
  const sorted = Object.fromEntries(
    Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return JSON.stringify(sorted, null, 2);
}

export function checkPositiveInt(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) <= 0)
    throw new ValueError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

export function checkNonNegativeInt(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0)
    throw new ValueError(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Module names (suffix match) or one regex (full match, checked to compile), or null. */
export function checkModuleSpec(name: string, v: unknown): string[] | string | null {
  if (v == null) return null;
  if (typeof v === "string") {
    if (v !== "all-linear") compilePattern(v);
    return v;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return [...v];
  throw new ValueError(
    `${name} must be a list of module names, a regex string, or null, got ${JSON.stringify(v)?.slice(0, 80)}`,
  );
}

export function checkNameList(name: string, v: unknown): string[] | null {
  if (v == null) return null;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return [...v];
  throw new ValueError(
    `${name} must be a list of module names or null, got ${JSON.stringify(v)?.slice(0, 80)}`,
  );
}

/** layers_to_transform: a layer index or a list of them. */
export function checkLayers(name: string, v: unknown): number[] | number | null {
  if (v == null) return null;
  const ok = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (ok(v)) return v as number;
  if (Array.isArray(v) && v.every(ok)) return [...v];
  throw new ValueError(
    `${name} must be a layer index or a list of them, got ${JSON.stringify(v)?.slice(0, 80)}`,
  );
}

/** layers_pattern: a layer container name (a regex) or a list of them. */
export function checkLayersPattern(name: string, v: unknown): string[] | string | null {
  if (v == null) return null;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string"))
    throw new ValueError(
      `${name} must be a string or a list of strings, got ${JSON.stringify(v)?.slice(0, 80)}`,
    );
  for (const p of list) compilePattern(p);
  return typeof v === "string" ? v : [...list];
}

/** rank_pattern / alpha_pattern: {module name or regex: number}. */
export function checkPatternMap(
  name: string,
  v: unknown,
  value: (field: string, x: unknown) => number,
): Record<string, number> {
  if (v == null) return {};
  if (typeof v !== "object" || Array.isArray(v))
    throw new ValueError(
      `${name} must be an object of {pattern: number}, got ${JSON.stringify(v)?.slice(0, 80)}`,
    );
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    compilePattern(k);
    out[k] = value(`${name}["${k}"]`, x);
  }
  return out;
}

export function checkBool(name: string, v: unknown): boolean {
  if (typeof v !== "boolean")
    throw new ValueError(`${name} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function checkNumber(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ValueError(`${name} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function checkOptionalString(name: string, v: unknown): string | null {
  if (v == null) return null;
  if (typeof v !== "string")
    throw new ValueError(`${name} must be a string or null, got ${JSON.stringify(v)}`);
  return v;
}
