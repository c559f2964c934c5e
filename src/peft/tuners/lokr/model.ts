import { lycorisSettings, lycorisWraps } from "../lycoris/model.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod } from "../tuner.js";
import { LoKrConfig } from "./config.js";
import { LoKrLayer } from "./layer.js";

export const lokr = {
  config: LoKrConfig,
  tuner: {
    inject(model, config, adapterName, options) {
      wrapTargets(model, config, LoKrLayer, lycorisWraps, (layer, name) =>
        layer.addAdapter(
          adapterName,
          {
            ...lycorisSettings(config, name, layer.base, options),
            decomposeBoth: config.decomposeBoth,
            decomposeFactor: config.decomposeFactor,
          },
          config.initWeights,
        ),
      );
    },
  },
  layer: LoKrLayer,
  command: {
    names: {
      lokr: (o) =>
        new LoKrConfig({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          r: o.r ?? 8,
          alpha: o.alpha ?? 16,
          rankDropout: o.dropout ?? 0,
        }),
    },
  },
} satisfies PeftMethod<LoKrConfig>;
