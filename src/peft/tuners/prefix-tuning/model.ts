import { VirtualTokenEncoder } from "../prompt/encoder.js";
import { promptTuner } from "../prompt/tuner.js";
import type { PeftMethod } from "../tuner.js";
import { PrefixTuningConfig } from "./config.js";

export const prefixTuning = {
  config: PrefixTuningConfig,
  tuner: promptTuner<PrefixTuningConfig>(
    "prefix tuning",
    "prefix",
    (config, model) => {
      // PEFT 0.13.2 sizes the prefix by the key/value heads (grouped-query attention).
      const { layers, kvHeads, headDim } = model.layout;
      config.tokenDim ??= kvHeads * headDim;
      config.numLayers ??= layers;
      config.numAttentionHeads ??= kvHeads;
    },
    (config, _model, dtype) => {
      const d = config.tokenDim!;
      const width = 2 * config.numLayers! * d;
      if (!config.prefixProjection || config.inferenceMode)
        return new VirtualTokenEncoder(config.numVirtualTokens!, width, dtype);
      // PEFT: Embedding(V, d) - Linear(d, h) - tanh - Linear(h, 2·L·d) while training.
      const h = config.encoderHiddenSize ?? d;
      const head = { name: "transform", widths: [d, h, width], activation: "tanh" as const };
      return new VirtualTokenEncoder(config.numVirtualTokens!, d, dtype, head);
    },
  ),
  command: {
    names: {
      "prefix-tuning": (o) =>
        new PrefixTuningConfig({
          taskType: "CAUSAL_LM",
          numVirtualTokens: (o.numVirtualTokens as number | undefined) ?? 8,
          prefixProjection: (o.prefixProjection as boolean | undefined) ?? false,
          encoderHiddenSize: (o.encoderHiddenSize as number | undefined) ?? null,
        }),
    },
    options: {
      prefixProjection: {
        type: "boolean",
        help: "prefix tuning: train the prefix through an MLP (PEFT's prefix_projection)",
      },
    },
  },
} satisfies PeftMethod<PrefixTuningConfig>;
