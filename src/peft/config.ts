import { ValueError } from "../errors.js";

export type PeftType = "LORA" | "VERA";
export type TaskType =
  | "CAUSAL_LM"
  | "SEQ_CLS"
  | "SEQ_2_SEQ_LM"
  | "TOKEN_CLS"
  | "QUESTION_ANS"
  | "FEATURE_EXTRACTION";

/** Fields every adapter config has (PEFT's PeftConfig and the tuner-level fields shared by LoRA and VeRA). */
export interface BaseConfigFields {
  taskType?: TaskType | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
  inferenceMode?: boolean;
  /** Module names (suffix match), a regex (full match), or "all-linear". */
  targetModules?: string[] | string | null;
  excludeModules?: string[] | string | null;
  layersToTransform?: number[] | number | null;
  layersPattern?: string[] | string | null;
  modulesToSave?: string[] | null;
  fanInFanOut?: boolean;
  bias?: "none" | "all" | "lora_only" | "vera_only";
}

export function camelToSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function snakeToCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Reads PEFT's snake_case JSON into camelCase fields. Keys the config class does not
 * know (a newer PEFT version's) are kept in `extra` so they are written back unchanged.
 */
export function fromSnakeCase(
  json: Record<string, unknown>,
  known: ReadonlySet<string>,
): { fields: Record<string, unknown>; extra: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    const camel = snakeToCamel(k);
    if (known.has(camel)) fields[camel] = v;
    else extra[k] = v;
  }
  return { fields, extra };
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
