import { checkBool, checkNonNegativeInt, checkNumber, checkPositiveInt } from "../../config.js";
import {
  type ConfigInit,
  checkProbability,
  configClass,
  field,
  oneOf,
  PEFT_CONFIG_FIELDS,
  TARGETING_FIELDS,
} from "../../config-table.js";

/** PEFT 0.13.2's VeraConfig keys and defaults; no alpha (the scaling vectors learn it). */
export const VERA_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  ...TARGETING_FIELDS,
  r: field(256, checkPositiveInt),
  /** Seed of the shared random projections (PyTorch's CPU generator, reproduced bit for bit). */
  projectionPrngKey: field(0, checkNonNegativeInt),
  /** Save vera_A/vera_B with the adapter; otherwise they are regenerated from the seed. */
  saveProjection: field(true, checkBool),
  veraDropout: field(0, checkProbability),
  dInitial: field(0.1, checkNumber),
  fanInFanOut: field(false, checkBool),
  bias: field("none" as "none" | "all" | "vera_only", oneOf(["none", "all", "vera_only"] as const)),
  initWeights: field(true, checkBool),
};

export type VeraConfigFields = ConfigInit<typeof VERA_FIELDS>;

/** VeRA settings with PEFT's names and defaults. */
export class VeraConfig extends configClass("VERA", "VeraConfig", VERA_FIELDS) {}
