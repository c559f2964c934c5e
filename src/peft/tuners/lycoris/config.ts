import { checkBool, checkNumber, checkPatternMap, checkPositiveInt } from "../../config.js";
import {
  checkProbability,
  field,
  keep,
  PEFT_CONFIG_FIELDS,
  TARGETING_FIELDS,
} from "../../config-table.js";

/** The keys LoHa and LoKr share (PEFT 0.13.2's LycorisConfig and its subclasses), with their defaults. */
export const LYCORIS_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  ...TARGETING_FIELDS,
  r: field(8, checkPositiveInt),
  alpha: field(8, checkNumber),
  /** Drops rows of ΔW while training (rescaled by the kept share). */
  rankDropout: field(0, checkProbability),
  /** Skips the whole adapter for a step while training, with this probability. */
  moduleDropout: field(0, checkProbability),
  /** true: ΔW starts at 0 (one factor zero); false: every factor random. */
  initWeights: field(true, checkBool),
  rankPattern: field({} as Record<string, number>, (n, v) =>
    checkPatternMap(n, v, checkPositiveInt),
  ),
  alphaPattern: field({} as Record<string, number>, (n, v) => checkPatternMap(n, v, checkNumber)),
  // Only for convolutions, which the models here do not have.
  useEffectiveConv2d: keep(false as unknown),
};
