import { lycorisSettings, lycorisWraps } from "../lycoris/model.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod } from "../tuner.js";
import { LoHaConfig } from "./config.js";
import { LoHaLayer } from "./layer.js";

export const loha = {
  config: LoHaConfig,
  tuner: {
    inject(model, config, adapterName, options) {
      wrapTargets(model, config, LoHaLayer, lycorisWraps, (layer, name) =>
        layer.addAdapter(
          adapterName,
          lycorisSettings(config, name, layer.base, options),
          config.initWeights,
        ),
      );
    },
  },
  layer: LoHaLayer,
  command: {
    names: {
      loha: (o) =>
        new LoHaConfig({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          r: o.r ?? 8,
          alpha: o.alpha ?? 16,
          rankDropout: o.dropout ?? 0,
        }),
    },
  },
} satisfies PeftMethod<LoHaConfig>;
