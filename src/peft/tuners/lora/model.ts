import { ValueError } from "../../../errors.js";
import { Conv1D, Embedding, Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { findTargets, patternValue } from "../../targeting.js";
import { adapterDTypeFor, type BaseLayer } from "../adapter-layer.js";
import { replaceModule } from "../replace.js";
import type { InjectOptions, Tuner } from "../tuner.js";
import type { LoraConfig } from "./config.js";
import { LoraLayer } from "./layer.js";

const wrappable = (m: Module) =>
  m instanceof Linear ||
  m instanceof Linear4bit ||
  m instanceof Conv1D ||
  m instanceof Embedding ||
  m instanceof LoraLayer;

export const loraTuner: Tuner<LoraConfig> = {
  inject(model: Module, config: LoraConfig, adapterName: string, options: InjectOptions): void {
    for (const name of findTargets(model, config, wrappable)) {
      const found = model.getModule(name);
      const layer =
        found instanceof LoraLayer
          ? found
          : replaceModule(model, name, new LoraLayer(found as BaseLayer));
      if (layer.base instanceof Embedding && config.useDora) {
        throw new ValueError(`DoRA is not supported on embedding layers (target "${name}")`);
      }
      layer.addAdapter(adapterName, {
        r: patternValue(config.rankPattern, name, config.r),
        alpha: patternValue(config.alphaPattern, name, config.loraAlpha),
        dropout: config.loraDropout,
        init: config.initLoraWeights,
        useRslora: config.useRslora,
        useDora: config.useDora,
        dtype: adapterDTypeFor(layer.base, options),
      });
    }
  },
};
