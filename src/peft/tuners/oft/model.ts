import { Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { patternValue } from "../../targeting.js";
import { adapterDTypeFor } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod } from "../tuner.js";
import { OFTConfig } from "./config.js";
import { OFTLayer } from "./layer.js";

const wraps = (m: Module) => m instanceof Linear || m instanceof Linear4bit;

export const oft = {
  config: OFTConfig,
  tuner: {
    inject(model, config, adapterName, options) {
      wrapTargets(model, config, OFTLayer, wraps, (layer, name) =>
        layer.addAdapter(
          adapterName,
          {
            r: patternValue(config.rankPattern, name, config.r),
            moduleDropout: config.moduleDropout,
            coft: config.coft,
            eps: config.eps,
            dtype: adapterDTypeFor(layer.base, options),
          },
          config.blockShare,
          config.initWeights,
        ),
      );
    },
  },
  layer: OFTLayer,
  command: {
    names: {
      oft: (o) =>
        new OFTConfig({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          r: o.r ?? 8,
          moduleDropout: o.dropout ?? 0,
        }),
    },
  },
} satisfies PeftMethod<OFTConfig>;
