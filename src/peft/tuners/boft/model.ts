import { Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { LORA_TARGETS } from "../../default-targets.js";
import { adapterDTypeFor } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod } from "../tuner.js";
import { BOFTConfig } from "./config.js";
import { BOFTLayer } from "./layer.js";

const wraps = (m: Module) => m instanceof Linear || m instanceof Linear4bit;

export const boft = {
  config: BOFTConfig,
  tuner: {
    inject(model, config, adapterName, options) {
      wrapTargets(model, config, BOFTLayer, wraps, (layer) =>
        layer.addAdapter(
          adapterName,
          {
            factors: config.boftNButterflyFactor,
            dropout: config.boftDropout,
            dtype: adapterDTypeFor(layer.base, options),
          },
          { size: config.boftBlockSize, num: config.boftBlockNum },
          config.initWeights,
        ),
      );
    },
  },
  layer: BOFTLayer,
  command: {
    names: {
      boft: (o) =>
        new BOFTConfig({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          boftBlockSize: (o.boftBlockSize as number | undefined) ?? 4,
          boftNButterflyFactor: (o.boftNButterflyFactor as number | undefined) ?? 1,
          boftDropout: o.dropout ?? 0,
        }),
    },
    options: {
      boftBlockSize: {
        type: "integer",
        min: 1,
        help: "BOFT: the rotation blocks' size",
        default: "4",
      },
      boftNButterflyFactor: {
        type: "integer",
        min: 1,
        help: "BOFT: the number of butterfly factors",
        default: "1",
      },
    },
  },
  defaultTargets: LORA_TARGETS,
} satisfies PeftMethod<BOFTConfig>;
