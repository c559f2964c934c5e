import { checkBool, checkPositiveInt } from "../../config.js";
import { type ConfigInit, configClass, field } from "../../config-table.js";
import { PROMPT_LEARNING_FIELDS } from "../prompt/config.js";

/** PEFT 0.13.2's PrefixTuningConfig keys and defaults. */
export const PREFIX_TUNING_FIELDS = {
  ...PROMPT_LEARNING_FIELDS,
  /** Width of the projection MLP's hidden layer. */
  encoderHiddenSize: field(null as number | null, (n, v) =>
    v == null ? null : checkPositiveInt(n, v),
  ),
  /** Train a table of token_dim per token through an MLP instead of the keys and values directly. */
  prefixProjection: field(false, checkBool),
};

export type PrefixTuningConfigFields = ConfigInit<typeof PREFIX_TUNING_FIELDS>;

/** Prefix tuning: trained keys and values in front of every layer's attention. */
export class PrefixTuningConfig extends configClass(
  "PREFIX_TUNING",
  "PrefixTuningConfig",
  PREFIX_TUNING_FIELDS,
) {}
