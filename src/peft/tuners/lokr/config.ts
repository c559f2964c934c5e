import { ValueError } from "../../../errors.js";
import { checkBool } from "../../config.js";
import { type ConfigInit, configClass, field } from "../../config-table.js";
import { LYCORIS_FIELDS } from "../lycoris/config.js";

function checkFactor(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || ((v as number) < 1 && v !== -1))
    throw new ValueError(`${name} must be -1 or a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

/** PEFT 0.13.2's LoKrConfig keys and defaults. */
export const LOKR_FIELDS = {
  ...LYCORIS_FIELDS,
  /** Also split the left (smaller) Kronecker factor into a rank-r product. */
  decomposeBoth: field(false, checkBool),
  /** The factorisation's largest factor, -1 for the most balanced one. */
  decomposeFactor: field(-1, checkFactor),
};

export type LoKrConfigFields = ConfigInit<typeof LOKR_FIELDS>;

/** LoKr: ΔW = w1 ⊗ w2 (a Kronecker product; either factor may be a rank-r product). */
export class LoKrConfig extends configClass("LOKR", "LoKrConfig", LOKR_FIELDS) {}
