import type { FloatDType } from "../../../backend/dtype.js";
import { LayerNorm, RMSNorm } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { LN_TUNING_TARGETS } from "../../default-targets.js";
import { adapterDTypeOver } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod } from "../tuner.js";
import { LNTuningConfig } from "./config.js";
import { LNTuningLayer } from "./layer.js";

const wraps = (m: Module) => m instanceof RMSNorm || m instanceof LayerNorm;

export const lnTuning = {
  config: LNTuningConfig,
  tuner: {
    inject(model, config, adapterName, options) {
      wrapTargets(model, config, LNTuningLayer, wraps, (layer) =>
        layer.addAdapter(adapterName, {
          // A norm's copy follows the adapter dtype rule of its weight.
          dtype: adapterDTypeOver(
            layer.childModule("base_layer")!.parameters()[0].dtype as FloatDType,
            options,
          ),
        }),
      );
    },
  },
  layer: LNTuningLayer,
  command: {
    names: {
      "ln-tuning": (o) =>
        new LNTuningConfig({
          targetModules:
            o.targetModules === "all-linear"
              ? ["input_layernorm", "post_attention_layernorm", "norm", "ln_1", "ln_2", "ln_f"]
              : o.targetModules,
          taskType: "CAUSAL_LM",
        }),
    },
  },
  defaultTargets: LN_TUNING_TARGETS,
} satisfies PeftMethod<LNTuningConfig>;
