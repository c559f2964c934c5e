import { type ConfigInit, configClass, field, keep, oneOf } from "../../config-table.js";
import { PROMPT_LEARNING_FIELDS } from "../prompt/config.js";

/** PEFT 0.13.2's PromptTuningConfig keys and defaults. */
export const PROMPT_TUNING_FIELDS = {
  ...PROMPT_LEARNING_FIELDS,
  /** RANDOM: N(0, 1) virtual tokens (TEXT, which copies a text's embeddings, is not implemented). */
  promptTuningInit: field("RANDOM" as const, oneOf(["RANDOM"] as const)),
  promptTuningInitText: keep(null as unknown),
  tokenizerNameOrPath: keep(null as unknown),
  tokenizerKwargs: keep(null as unknown),
};

export type PromptTuningConfigFields = ConfigInit<typeof PROMPT_TUNING_FIELDS>;

/** Prompt tuning: V trained embeddings in front of every input. */
export class PromptTuningConfig extends configClass(
  "PROMPT_TUNING",
  "PromptTuningConfig",
  PROMPT_TUNING_FIELDS,
) {}
