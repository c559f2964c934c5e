import { Conv1D, Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { IA3_FEEDFORWARD, IA3_TARGETS, modelTypeOf } from "../../default-targets.js";
import { isLinearLike, nameMatches } from "../../targeting.js";
import { adapterDTypeFor } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod } from "../tuner.js";
import { IA3Config } from "./config.js";
import { IA3Layer } from "./layer.js";

const wraps = (m: Module) => m instanceof Linear || m instanceof Linear4bit || m instanceof Conv1D;

/** Feed-forward modules by PEFT's rule; with "all-linear" targets, the MLP's down projections. */
function isFeedforward(config: IA3Config, name: string, m: Module): boolean {
  const f = config.feedforwardModules;
  if (f === null) return false;
  return f === "all-linear" ? isLinearLike(m) : nameMatches(f, name);
}

export const ia3 = {
  config: IA3Config,
  tuner: {
    inject(model, config, adapterName, options) {
      // PEFT fills feed-forward modules from its table when none are given.
      config.feedforwardModules ??= [...(IA3_FEEDFORWARD[modelTypeOf(model) ?? ""] ?? [])];
      wrapTargets(model, config, IA3Layer, wraps, (layer, name) =>
        layer.addAdapter(
          adapterName,
          {
            dtype: adapterDTypeFor(layer.base, options),
            feedforward: isFeedforward(config, name, layer.base),
          },
          config.initIa3Weights,
        ),
      );
    },
  },
  layer: IA3Layer,
  command: {
    names: {
      ia3: (o) =>
        new IA3Config({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          feedforwardModules: (o.feedforwardModules as string[] | undefined) ?? null,
        }),
    },
    options: {
      feedforwardModules: {
        type: "list",
        value: "a,b",
        help: "IA3: the layers whose input is scaled (e.g. down_proj); the others scale their output",
      },
    },
  },
  defaultTargets: IA3_TARGETS,
} satisfies PeftMethod<IA3Config>;
