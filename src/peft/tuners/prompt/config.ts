import { ValueError } from "../../../errors.js";
import { checkPositiveInt } from "../../config.js";
import { field, PEFT_CONFIG_FIELDS } from "../../config-table.js";

const optionalInt = (n: string, v: unknown) => (v == null ? null : checkPositiveInt(n, v));

/**
 * PEFT 0.13.2's PromptLearningConfig keys. The model's sizes are filled in when the adapter
 * is created (token_dim, num_layers, num_attention_heads), as PEFT does.
 */
export const PROMPT_LEARNING_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  numVirtualTokens: field(null as number | null, optionalInt),
  tokenDim: field(null as number | null, optionalInt),
  numTransformerSubmodules: field(null as number | null, (n, v) => {
    // Two submodules are encoder-decoder models, which peft-ts does not load.
    if (v != null && v !== 1)
      throw new ValueError(`${n} must be 1 (decoder-only models), got ${JSON.stringify(v)}`);
    return v == null ? null : 1;
  }),
  numAttentionHeads: field(null as number | null, optionalInt),
  numLayers: field(null as number | null, optionalInt),
};
