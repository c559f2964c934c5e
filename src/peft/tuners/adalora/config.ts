import { ValueError } from "../../../errors.js";
import { checkNonNegativeInt, checkPositiveInt } from "../../config.js";
import { type ConfigInit, configClass, field } from "../../config-table.js";
import { LORA_FIELDS } from "../lora/config.js";

/** Which of a module's init_r ranks survived budget allocation, by "<module>.lora_E". */
export type RankMasks = Record<string, boolean[]>;

function checkRankMasks(name: string, v: unknown): RankMasks | null {
  if (v == null) return null;
  if (typeof v !== "object" || Array.isArray(v))
    throw new ValueError(
      `${name} must be null or an object of {"<module>.lora_E": [true/false per rank]}, got ${JSON.stringify(v)?.slice(0, 80)}`,
    );
  const out: RankMasks = {};
  for (const [k, mask] of Object.entries(v)) {
    if (!Array.isArray(mask) || !mask.every((b) => typeof b === "boolean"))
      throw new ValueError(
        `${name}["${k}"] must be a list of true/false (one per rank), got ${JSON.stringify(mask)?.slice(0, 80)}`,
      );
    out[k] = [...mask];
  }
  return out;
}

function checkBeta(name: string, v: unknown): number {
  if (!(typeof v === "number" && v > 0 && v < 1))
    throw new ValueError(`${name} must be a number in (0, 1), got ${JSON.stringify(v)}`);
  return v;
}

function checkOrthWeight(name: string, v: unknown): number {
  if (!(typeof v === "number" && v > 0 && Number.isFinite(v)))
    throw new ValueError(`${name} must be a number above 0, got ${JSON.stringify(v)}`);
  return v;
}

function refuse(what: string, isDefault: (v: unknown) => boolean) {
  return <T>(defaultValue: T) =>
    field(defaultValue, (name, v) => {
      if (!isDefault(v)) throw new ValueError(`${name}: AdaLoRA does not support ${what}`);
      return structuredClone(v) as T;
    });
}

/**
 * PEFT 0.13.2's AdaLoraConfig: LoraConfig's keys (its `r`, rank and alpha patterns are
 * not used: every module starts at initR) and the budget schedule's.
 */
export const ADALORA_FIELDS = {
  ...LORA_FIELDS,
  useDora: refuse("DoRA", (v) => v === false)(false),
  loftqConfig: refuse(
    "LoftQ",
    (v) => v == null || (typeof v === "object" && Object.keys(v).length === 0),
  )({} as unknown),
  /** The average rank the budget shrinks to. */
  targetR: field(8, checkPositiveInt),
  /** Every module's rank before allocation. */
  initR: field(12, checkPositiveInt),
  /** Steps before the budget starts to shrink, and steps at the final budget. */
  tinit: field(0, checkNonNegativeInt),
  tfinal: field(0, checkNonNegativeInt),
  /** Steps between two allocations while the budget shrinks. */
  deltaT: field(1, checkPositiveInt, { key: "deltaT" }),
  /** Smoothing of the sensitivity and of its uncertainty. */
  beta1: field(0.85, checkBeta),
  beta2: field(0.85, checkBeta),
  /** Weight of ‖AAᵀ−I‖ and ‖BᵀB−I‖ in the loss. */
  orthRegWeight: field(0.5, checkOrthWeight),
  /** Length of the run the schedule spans (the trainer fills in its own when null). */
  totalStep: field(null as number | null, (n, v) => (v == null ? null : checkPositiveInt(n, v))),
  rankPattern: field(null as RankMasks | null, checkRankMasks),
};

export type AdaLoraConfigFields = ConfigInit<typeof ADALORA_FIELDS>;

/** AdaLoRA: LoRA as P·Λ·Q with ranks pruned by importance during training. */
export class AdaLoraConfig extends configClass("ADALORA", "AdaLoraConfig", ADALORA_FIELDS) {}
