import { VirtualTokenEncoder } from "../prompt/encoder.js";
import { embeddingSizes, promptTuner } from "../prompt/tuner.js";
import type { PeftMethod } from "../tuner.js";
import { PromptEncoderConfig } from "./config.js";

export const pTuning = {
  config: PromptEncoderConfig,
  tuner: promptTuner<PromptEncoderConfig>(
    "P-tuning",
    "embeddings",
    embeddingSizes,
    (config, _model, dtype) => {
      const d = config.tokenDim!;
      const h = config.encoderHiddenSize ?? d;
      // PEFT: Linear(d, h) - ReLU - Linear(h, h) - ReLU - Linear(h, d) while training; a
      // loaded adapter holds the MLP's saved output only.
      const head = config.inferenceMode
        ? null
        : { name: "mlp_head", widths: [d, h, h, d], activation: "relu" as const };
      return new VirtualTokenEncoder(config.numVirtualTokens!, d, dtype, head);
    },
  ),
  command: {
    names: {
      "p-tuning": (o) =>
        new PromptEncoderConfig({
          taskType: "CAUSAL_LM",
          numVirtualTokens: (o.numVirtualTokens as number | undefined) ?? 8,
          encoderHiddenSize: (o.encoderHiddenSize as number | undefined) ?? null,
        }),
    },
    options: {
      encoderHiddenSize: {
        type: "integer",
        min: 1,
        help: "P-tuning, prefix tuning with --prefix-projection: the encoder MLP's width",
        default: "the hidden size",
      },
    },
  },
} satisfies PeftMethod<PromptEncoderConfig>;
