import { type ConfigInit, configClass } from "../../config-table.js";
import { LYCORIS_FIELDS } from "../lycoris/config.js";

export type LoHaConfigFields = ConfigInit<typeof LYCORIS_FIELDS>;

/** LoHa: ΔW = (w1_a·w1_b) ⊙ (w2_a·w2_b) · alpha/r, PEFT 0.13.2's keys and defaults. */
export class LoHaConfig extends configClass("LOHA", "LoHaConfig", LYCORIS_FIELDS) {}
