import { ValueError } from "../../../errors.js";
import { Conv1D, Embedding, Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { LORA_TARGETS } from "../../default-targets.js";
import { patternValue } from "../../targeting.js";
import { adapterDTypeFor } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { CommandOptions, InjectOptions, PeftMethod, Tuner } from "../tuner.js";
import { LoraConfig } from "./config.js";
import { LoraLayer } from "./layer.js";

const wraps = (m: Module) =>
  m instanceof Linear || m instanceof Linear4bit || m instanceof Conv1D || m instanceof Embedding;

export const loraTuner: Tuner<LoraConfig> = {
  inject(model: Module, config: LoraConfig, adapterName: string, options: InjectOptions): void {
    wrapTargets(model, config, LoraLayer, wraps, (layer, name) => {
      if (layer.base instanceof Embedding && config.useDora)
        throw new ValueError(`DoRA is not supported on embedding layers (target "${name}")`);
      layer.addAdapter(adapterName, {
        r: patternValue(config.rankPattern, name, config.r),
        alpha: patternValue(config.alphaPattern, name, config.loraAlpha),
        dropout: config.loraDropout,
        init: config.initLoraWeights,
        useRslora: config.useRslora,
        useDora: config.useDora,
        dtype: adapterDTypeFor(layer.base, options),
      });
    });
  },
};

const fromCommand = (useDora: boolean) => (o: CommandOptions) =>
  new LoraConfig({
    targetModules: o.targetModules,
    taskType: "CAUSAL_LM",
    r: o.r ?? 8,
    loraAlpha: o.alpha ?? 16,
    loraDropout: o.dropout ?? 0,
    useDora,
  });

export const lora = {
  config: LoraConfig,
  tuner: loraTuner,
  layer: LoraLayer,
  command: { names: { lora: fromCommand(false), dora: fromCommand(true) } },
  defaultTargets: LORA_TARGETS,
} satisfies PeftMethod<LoraConfig>;
