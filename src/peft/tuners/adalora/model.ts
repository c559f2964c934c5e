import { ValueError } from "../../../errors.js";
import { Conv1D, Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { eye } from "../../../tensor/creation.js";
import { add, div, mul, sqrt, sub } from "../../../tensor/ops/elementwise.js";
import { transpose } from "../../../tensor/ops/layout.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import { sum } from "../../../tensor/ops/reduce.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { ADALORA_TARGETS } from "../../default-targets.js";
import { adapterDTypeFor } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { PeftMethod, TrainingHooks } from "../tuner.js";
import { maskKey, RankAllocator } from "./allocator.js";
import { AdaLoraConfig } from "./config.js";
import { AdaLoraLayer, keepAlong } from "./layer.js";

const wraps = (m: Module) => m instanceof Linear || m instanceof Linear4bit || m instanceof Conv1D;

const kept = (mask: readonly boolean[]) => mask.flatMap((k, i) => (k ? [i] : []));

function layersOf(model: Module, adapter: string): AdaLoraLayer[] {
  return [...model.namedModules()]
    .map(([, m]) => m)
    .filter((m): m is AdaLoraLayer => m instanceof AdaLoraLayer && m.hasAdapter(adapter));
}

/** ‖M − I‖_F, M square. */
function distanceToIdentity(m: Tensor): Tensor {
  const d = sub(m, eye(m.shape[0], { dtype: m.dtype as never }));
  return sqrt(sum(mul(d, d)));
}

/** PEFT's orthogonality term: the mean over A and B factors of ‖AAᵀ−I‖_F and ‖BᵀB−I‖_F. */
function orthogonality(layers: readonly AdaLoraLayer[], adapter: string): Tensor | null {
  const terms: Tensor[] = [];
  for (const l of layers) {
    if (l.settingsOf(adapter).r === 0) continue;
    const A = l.factor("lora_A", adapter);
    const B = l.factor("lora_B", adapter);
    terms.push(distanceToIdentity(matmul(A, transpose(A))));
    terms.push(distanceToIdentity(matmul(transpose(B), B)));
  }
  if (terms.length === 0) return null;
  return div(
    terms.reduce((a, b) => add(a, b)),
    terms.length,
  );
}

export const adalora = {
  config: AdaLoraConfig,
  tuner: {
    checkNewConfig(existing, config) {
      // PEFT: the rank allocator serves one adapter, so only one may train.
      if (!config.inferenceMode && existing.some((c) => !c.inferenceMode))
        throw new ValueError(
          "AdaLoRA trains one adapter at a time: give every other AdaLoRA adapter inferenceMode: true",
        );
    },
    inject(model, config, adapterName, options) {
      const masks = config.rankPattern ?? {};
      wrapTargets(model, config, AdaLoraLayer, wraps, (layer, name) => {
        const mask = masks[maskKey(name)];
        if (mask !== undefined && mask.length !== config.initR)
          throw new ValueError(
            `AdaLoraConfig.rankPattern["${maskKey(name)}"] has ${mask.length} entries; expected initR = ${config.initR}`,
          );
        layer.addAdapter(
          adapterName,
          {
            r: mask === undefined ? config.initR : kept(mask).length,
            alpha: config.loraAlpha,
            dropout: config.loraDropout,
            ranknum: config.initR,
            dtype: adapterDTypeFor(layer.base, options),
          },
          config.initLoraWeights !== false,
        );
      });
    },
    savedTensors(config, _adapterName, tensors) {
      // As PEFT: the ranks rank_pattern drops leave the file (rows of A and E, columns of B).
      const masks = config.rankPattern;
      if (masks === null) return tensors;
      const out = new Map(tensors);
      for (const [key, mask] of Object.entries(masks)) {
        const module = `base_model.model.${key.slice(0, -".lora_E".length)}`;
        const keep = kept(mask);
        for (const [factor, axis] of [
          ["lora_A", 0],
          ["lora_E", 0],
          ["lora_B", 1],
        ] as const) {
          const t = out.get(`${module}.${factor}`);
          if (t !== undefined) out.set(`${module}.${factor}`, keepAlong(t, axis, keep));
        }
      }
      return out;
    },
    training(model, config, adapterName): TrainingHooks {
      const layers = layersOf(model, adapterName);
      let allocator: RankAllocator | null = null;
      return {
        lossTerm() {
          const o = orthogonality(layers, adapterName);
          return o === null ? null : mul(o, config.orthRegWeight);
        },
        beforeTraining(totalSteps) {
          config.totalStep ??= totalSteps;
        },
        afterStep(step) {
          allocator ??= new RankAllocator(layers, config, adapterName);
          allocator.afterStep(step);
        },
        runConfigKeys: ["rank_pattern", "total_step"],
        runState() {
          const tensors = new Map<string, Tensor>();
          for (const l of layers)
            for (const f of ["lora_A", "lora_E", "lora_B"] as const)
              tensors.set(`weights/base_model.model.${l.path}.${f}`, l.factor(f, adapterName));
          for (const [k, t] of allocator?.smoothedState() ?? []) tensors.set(`allocator/${k}`, t);
          return {
            json: { totalStep: config.totalStep, rankPattern: config.rankPattern },
            tensors,
          };
        },
        loadRunState(json, tensors) {
          const saved = json as Pick<AdaLoraConfig, "totalStep" | "rankPattern">;
          config.totalStep = saved.totalStep;
          config.rankPattern = saved.rankPattern;
          allocator = new RankAllocator(layers, config, adapterName);
          const smoothed = new Map<string, Tensor>();
          for (const [k, t] of tensors)
            if (k.startsWith("allocator/")) smoothed.set(k.slice("allocator/".length), t);
          allocator.loadSmoothedState(smoothed);
        },
      };
    },
  },
  layer: AdaLoraLayer,
  command: {
    names: {
      adalora: (o) =>
        new AdaLoraConfig({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          initR: o.r ?? 12,
          targetR: (o.targetR as number | undefined) ?? Math.min(8, o.r ?? 12),
          loraAlpha: o.alpha ?? 32,
          loraDropout: o.dropout ?? 0,
          tinit: (o.tinit as number | undefined) ?? 0,
          tfinal: (o.tfinal as number | undefined) ?? 0,
          deltaT: (o.deltaT as number | undefined) ?? 1,
        }),
    },
    options: {
      targetR: {
        type: "integer",
        min: 1,
        help: "AdaLoRA: the average rank the budget shrinks to (-r is the initial rank)",
        default: "min(8, r)",
      },
      tinit: {
        type: "integer",
        min: 0,
        help: "AdaLoRA: steps before ranks are pruned",
        default: "0",
      },
      tfinal: {
        type: "integer",
        min: 0,
        help: "AdaLoRA: steps trained at the final budget",
        default: "0",
      },
      deltaT: {
        type: "integer",
        min: 1,
        help: "AdaLoRA: steps between two rank allocations",
        default: "1",
      },
    },
  },
  defaultTargets: ADALORA_TARGETS,
} satisfies PeftMethod<AdaLoraConfig>;
