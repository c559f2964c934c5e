import { ValueError } from "../../../errors.js";
import { checkBool, checkNonNegativeInt, checkPositiveInt } from "../../config.js";
import {
  type ConfigInit,
  checkProbability,
  configClass,
  field,
  oneOf,
  PEFT_CONFIG_FIELDS,
  TARGETING_FIELDS,
} from "../../config-table.js";

/** PEFT 0.13.2's BOFTConfig keys and defaults. */
export const BOFT_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  ...TARGETING_FIELDS,
  /** Size b of the rotation blocks (0: from boftBlockNum); blocks · b = in_features. */
  boftBlockSize: field(4, checkNonNegativeInt),
  /** Number of blocks (0: from boftBlockSize). */
  boftBlockNum: field(0, checkNonNegativeInt),
  /** Butterfly factors: how many block-diagonal rotations, each after a wider permutation. */
  boftNButterflyFactor: field(1, checkPositiveInt),
  /** While training, replaces this share of one factor's blocks by I. */
  boftDropout: field(0, checkProbability),
  fanInFanOut: field(false, checkBool),
  bias: field("none" as "none" | "all" | "boft_only", oneOf(["none", "all", "boft_only"] as const)),
  /** true: rotation I and scale 1; false: R ~ N(0, 0.1²), s ~ N(1, 0.1²). */
  initWeights: field(true, checkBool),
};

export type BOFTConfigFields = ConfigInit<typeof BOFT_FIELDS>;

/** BOFT: the input rotated by a product of butterfly-permuted block rotations, the output scaled. */
export class BOFTConfig extends configClass("BOFT", "BOFTConfig", BOFT_FIELDS) {
  constructor(init: BOFTConfigFields = {}) {
    super(init);
    if ((this.boftBlockSize !== 0) === (this.boftBlockNum !== 0))
      throw new ValueError(
        `BOFTConfig: give exactly one of boftBlockSize and boftBlockNum (the other is 0), got ${this.boftBlockSize} and ${this.boftBlockNum}`,
      );
  }
}
