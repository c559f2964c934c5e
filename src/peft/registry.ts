import type { PeftType } from "./config.js";
import { LoraConfig, type LoraConfigFields } from "./tuners/lora/config.js";
import { loraTuner } from "./tuners/lora/model.js";
import type { AdapterConfig, Tuner } from "./tuners/tuner.js";
import { VeraConfig, type VeraConfigFields } from "./tuners/vera/config.js";
import { veraTuner } from "./tuners/vera/model.js";

/** What peft-ts knows of one PEFT method: its config class and its tuner. */
export interface PeftMethod<C extends AdapterConfig, F> {
  readonly config: {
    new (fields: F): C;
    fromJson(json: Record<string, unknown>): C;
  };
  readonly tuner: Tuner<C>;
}

/**
 * The one place methods are registered. Keyed by every PeftType, so a type without an
 * entry fails to compile; loading, saving, the command and the tests read this table.
 */
export const PEFT_METHODS = {
  LORA: { config: LoraConfig, tuner: loraTuner } as PeftMethod<LoraConfig, LoraConfigFields>,
  VERA: { config: VeraConfig, tuner: veraTuner } as PeftMethod<VeraConfig, VeraConfigFields>,
} satisfies Record<PeftType, PeftMethod<AdapterConfig, never>>;

export const PEFT_TYPES = Object.keys(PEFT_METHODS) as PeftType[];

export function isPeftType(t: unknown): t is PeftType {
  return typeof t === "string" && Object.hasOwn(PEFT_METHODS, t);
}

export function methodFor(config: AdapterConfig): PeftMethod<AdapterConfig, unknown> {
  return PEFT_METHODS[config.peftType] as unknown as PeftMethod<AdapterConfig, unknown>;
}
