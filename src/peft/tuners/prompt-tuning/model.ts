import { VirtualTokenEncoder } from "../prompt/encoder.js";
import { embeddingSizes, promptTuner } from "../prompt/tuner.js";
import type { PeftMethod } from "../tuner.js";
import { PromptTuningConfig } from "./config.js";

export const promptTuning = {
  config: PromptTuningConfig,
  tuner: promptTuner<PromptTuningConfig>(
    "prompt tuning",
    "embeddings",
    embeddingSizes,
    (config, _model, dtype) =>
      new VirtualTokenEncoder(config.numVirtualTokens!, config.tokenDim!, dtype),
  ),
  command: {
    names: {
      "prompt-tuning": (o) =>
        new PromptTuningConfig({
          taskType: "CAUSAL_LM",
          numVirtualTokens: (o.numVirtualTokens as number | undefined) ?? 8,
        }),
    },
    options: {
      numVirtualTokens: {
        type: "integer",
        min: 1,
        help: "prompt tuning, prefix tuning, P-tuning: the number of virtual tokens",
        default: "8",
      },
    },
  },
} satisfies PeftMethod<PromptTuningConfig>;
