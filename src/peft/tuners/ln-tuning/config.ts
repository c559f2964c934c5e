import {
  type ConfigInit,
  configClass,
  PEFT_CONFIG_FIELDS,
  TARGET_FIELDS,
} from "../../config-table.js";

/** PEFT 0.13.2's LNTuningConfig keys: which norms get a trainable copy. */
export const LN_TUNING_FIELDS = { ...PEFT_CONFIG_FIELDS, ...TARGET_FIELDS };

export type LNTuningConfigFields = ConfigInit<typeof LN_TUNING_FIELDS>;

/** LN tuning: each targeted norm is replaced by a trainable copy of itself. */
export class LNTuningConfig extends configClass("LN_TUNING", "LNTuningConfig", LN_TUNING_FIELDS) {}
