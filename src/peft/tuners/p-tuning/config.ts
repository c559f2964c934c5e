import { checkPositiveInt } from "../../config.js";
import { type ConfigInit, configClass, field, keep, oneOf } from "../../config-table.js";
import { PROMPT_LEARNING_FIELDS } from "../prompt/config.js";

/** PEFT 0.13.2's PromptEncoderConfig keys and defaults. */
export const P_TUNING_FIELDS = {
  ...PROMPT_LEARNING_FIELDS,
  /** The MLP reparameterisation (PEFT's LSTM one is not implemented). */
  encoderReparameterizationType: field("MLP" as const, oneOf(["MLP"] as const)),
  /** Width of the MLP's hidden layers (the token dimension when null). */
  encoderHiddenSize: field(null as number | null, (n, v) =>
    v == null ? null : checkPositiveInt(n, v),
  ),
  /** PEFT's MLP always has two hidden layers whatever this says (it only shapes the LSTM). */
  encoderNumLayers: keep(2 as unknown),
  /** Dropout of the LSTM only. */
  encoderDropout: keep(0 as unknown),
};

export type PromptEncoderConfigFields = ConfigInit<typeof P_TUNING_FIELDS>;

/** P-tuning: virtual tokens made by an MLP from a trained table, in front of every input. */
export class PromptEncoderConfig extends configClass(
  "P_TUNING",
  "PromptEncoderConfig",
  P_TUNING_FIELDS,
) {}
