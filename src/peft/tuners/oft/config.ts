import { checkBool, checkNumber, checkPatternMap, checkPositiveInt } from "../../config.js";
import {
  type ConfigInit,
  checkProbability,
  configClass,
  field,
  PEFT_CONFIG_FIELDS,
  TARGETING_FIELDS,
} from "../../config-table.js";

/** PEFT 0.13.2's OFTConfig keys and defaults; r is the number of blocks. */
export const OFT_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  ...TARGETING_FIELDS,
  r: field(8, checkPositiveInt),
  /** Skips the adapter for a forward while training, with this probability. */
  moduleDropout: field(0, checkProbability),
  /** true: every rotation starts at I; false: random. */
  initWeights: field(true, checkBool),
  /** Constrained OFT: each block is kept within a Frobenius ball of radius eps·b²/√blocks. */
  coft: field(false, checkBool),
  eps: field(6e-5, checkNumber),
  /** One block shared by all blocks of a layer. */
  blockShare: field(false, checkBool),
  rankPattern: field({} as Record<string, number>, (n, v) =>
    checkPatternMap(n, v, checkPositiveInt),
  ),
  alphaPattern: field({} as Record<string, number>, (n, v) => checkPatternMap(n, v, checkNumber)),
};

export type OFTConfigFields = ConfigInit<typeof OFT_FIELDS>;

/** OFT: the layer's output rotated by a block-diagonal orthogonal matrix (Cayley blocks). */
export class OFTConfig extends configClass("OFT", "OFTConfig", OFT_FIELDS) {}
