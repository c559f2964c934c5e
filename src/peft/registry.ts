import { adalora } from "./tuners/adalora/model.js";
import { boft } from "./tuners/boft/model.js";
import { ia3 } from "./tuners/ia3/model.js";
import { lnTuning } from "./tuners/ln-tuning/model.js";
import { loha } from "./tuners/loha/model.js";
import { lokr } from "./tuners/lokr/model.js";
import { lora } from "./tuners/lora/model.js";
import { oft } from "./tuners/oft/model.js";
import { pTuning } from "./tuners/p-tuning/model.js";
import { prefixTuning } from "./tuners/prefix-tuning/model.js";
import { promptTuning } from "./tuners/prompt-tuning/model.js";
import type { AdapterConfigBase, PeftMethod } from "./tuners/tuner.js";
import { vera } from "./tuners/vera/model.js";

/**
 * The one place methods are registered: peft_type -> the method's config class, tuner,
 * layer and command. Loading, saving, `peft train`/`peft inspect` and the dtype matrix read
 * this table; the key must be the config's own peftType (checked below at compile time).
 */
export const PEFT_METHODS = registry({
  LORA: lora,
  VERA: vera,
  IA3: ia3,
  LOHA: loha,
  LOKR: lokr,
  OFT: oft,
  BOFT: boft,
  LN_TUNING: lnTuning,
  ADALORA: adalora,
  PROMPT_TUNING: promptTuning,
  PREFIX_TUNING: prefixTuning,
  P_TUNING: pTuning,
});

export type PeftType = keyof typeof PEFT_METHODS;

type ConfigOfMethod<M> = M extends PeftMethod<infer C> ? C : never;
/** Every registered method's config. */
export type AdapterConfig = ConfigOfMethod<(typeof PEFT_METHODS)[PeftType]>;

/** A method whose config's peftType is not its key becomes `never`, which fails to compile. */
type Keyed<T> = {
  [K in keyof T]: T[K] extends PeftMethod<infer C>
    ? C["peftType"] extends K
      ? T[K]
      : never
    : never;
};

function registry<T extends Record<string, PeftMethod>>(methods: T & Keyed<T>): T {
  return methods;
}

/** A config as plain fields with its peftType (what getPeftModel also accepts). */
export type AdapterConfigInit = {
  [K in PeftType]: NonNullable<ConstructorParameters<(typeof PEFT_METHODS)[K]["config"]>[0]> & {
    peftType: K;
  };
}[PeftType];

export const PEFT_TYPES = Object.keys(PEFT_METHODS) as PeftType[];

export function isPeftType(t: unknown): t is PeftType {
  return typeof t === "string" && Object.hasOwn(PEFT_METHODS, t);
}

export function methodFor(config: AdapterConfigBase): PeftMethod {
  return PEFT_METHODS[config.peftType as PeftType] as unknown as PeftMethod;
}
