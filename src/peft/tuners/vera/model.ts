import { ShapeError, ValueError } from "../../../errors.js";
import { Conv1D, Linear } from "../../../nn/layers.js";
import type { Module } from "../../../nn/module.js";
import { Linear4bit } from "../../../quant/linear4bit.js";
import { uniform } from "../../../tensor/creation.js";
import { Generator } from "../../../tensor/random.js";
import { fmt, sameShape } from "../../../tensor/shape.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { LORA_TARGETS } from "../../default-targets.js";
import { findTargets } from "../../targeting.js";
import { adapterDTypeFor, type BaseLayer } from "../adapter-layer.js";
import { wrapTargets } from "../replace.js";
import type { InjectOptions, PeftMethod, Tuner } from "../tuner.js";
import { VeraConfig } from "./config.js";
import { type SharedProjections, VeraLayer } from "./layer.js";

const wraps = (m: Module) => m instanceof Linear || m instanceof Linear4bit || m instanceof Conv1D;
const wrappable = (m: Module) => wraps(m) || m instanceof VeraLayer;

/** Shared projections of each model's VeRA adapters. */
const projections = new WeakMap<Module, Map<string, SharedProjections>>();

/**
 * PEFT's VeRA projections: a CPU generator seeded with the key draws A = U(±√3·√2/√maxIn)
 * of shape [r, maxIn], then B = U(±√3·√2/√r) of shape [maxOut, r]. peft-ts's generator and
 * uniform() reproduce PyTorch's bits, so the projections equal PEFT's exactly.
 */
export function makeProjections(
  key: number,
  r: number,
  maxIn: number,
  maxOut: number,
): SharedProjections {
  const generator = new Generator(key);
  const bound = (fan: number) => Math.sqrt(3) * (Math.sqrt(2) / Math.sqrt(fan));
  const A = uniform([r, maxIn], -bound(maxIn), bound(maxIn), { generator });
  const B = uniform([maxOut, r], -bound(r), bound(r), { generator });
  return { A, B };
}

export const veraTuner: Tuner<VeraConfig> = {
  // One model's VeRA adapters share one pair of projections, so (as PEFT) they must agree
  // on the key that draws them and on whether the pair is saved.
  checkNewConfig(existing: readonly VeraConfig[], config: VeraConfig): void {
    for (const other of existing) {
      if (other.projectionPrngKey !== config.projectionPrngKey)
        throw new ValueError(
          `VeRA adapters of one model share their projections: projection_prng_key must be the same for all of them, got ${config.projectionPrngKey} but an existing adapter has ${other.projectionPrngKey}`,
        );
      if (other.saveProjection !== config.saveProjection)
        throw new ValueError(
          `VeRA adapters of one model share their projections: save_projection must be the same for all of them, got ${config.saveProjection} but an existing adapter has ${other.saveProjection}`,
        );
    }
  },

  inject(model: Module, config: VeraConfig, adapterName: string, options: InjectOptions): void {
    const targets = findTargets(model, config, wrappable);
    // Sizes come from each layer's real (out, in) shape, so layers of different sizes share one pair.
    let maxIn = 0;
    let maxOut = 0;
    for (const name of targets) {
      const m = model.getModule(name);
      const layer = (m instanceof VeraLayer ? m.base : m) as Linear | Linear4bit | Conv1D;
      maxIn = Math.max(maxIn, layer.inFeatures);
      maxOut = Math.max(maxOut, layer.outFeatures);
    }
    // Drawn in float32 (PEFT's draws), then kept in the adapters' dtype, as PEFT casts its BufferDict.
    const first = model.getModule(targets[0]);
    const dtype = adapterDTypeFor(
      (first instanceof VeraLayer ? first.base : first) as BaseLayer,
      options,
    );
    const drawn = makeProjections(config.projectionPrngKey, config.r, maxIn, maxOut);
    const shared = { A: drawn.A.to(dtype), B: drawn.B.to(dtype) };
    const perModel = projections.get(model) ?? new Map<string, SharedProjections>();
    projections.set(model, perModel);
    perModel.set(adapterName, shared);
    wrapTargets(model, config, VeraLayer, wraps, (layer) =>
      layer.addAdapter(
        adapterName,
        config.r,
        config.veraDropout,
        config.dInitial,
        config.initWeights,
        adapterDTypeFor(layer.base, options),
        shared,
      ),
    );
  },

  extraState(model: Module, config: VeraConfig, adapterName: string): Map<string, Tensor> {
    const shared = projections.get(model)?.get(adapterName);
    if (!config.saveProjection || shared === undefined) return new Map();
    return new Map([
      ["base_model.vera_A", shared.A],
      ["base_model.vera_B", shared.B],
    ]);
  },

  loadExtraState(
    model: Module,
    config: VeraConfig,
    adapterName: string,
    tensors: ReadonlyMap<string, Tensor>,
  ): string[] {
    const shared = projections.get(model)?.get(adapterName);
    if (shared === undefined) return [];
    const A = tensors.get("base_model.vera_A");
    const B = tensors.get("base_model.vera_B");
    if (A === undefined || B === undefined) {
      if (config.saveProjection) {
        throw new ValueError(
          "the adapter says save_projection=true but its file has no base_model.vera_A / base_model.vera_B",
        );
      }
      // Regenerated from projection_prng_key; equal to PEFT's bit for bit (see makeProjections).
      return [];
    }
    for (const [name, saved, own] of [
      ["base_model.vera_A", A, shared.A],
      ["base_model.vera_B", B, shared.B],
    ] as const) {
      if (!sameShape(saved.shape, own.shape)) {
        throw new ShapeError(
          "loadAdapter",
          `tensor "${name}" has shape ${fmt(saved.shape)} but this model's targeted layers need ${fmt(own.shape)}`,
        );
      }
      const v = saved.to(own.dtype);
      (own.data as Uint8Array).set(v.data as Uint8Array);
    }
    return ["base_model.vera_A", "base_model.vera_B"];
  },
};

export const vera = {
  config: VeraConfig,
  tuner: veraTuner,
  layer: VeraLayer,
  command: {
    names: {
      vera: (o) =>
        new VeraConfig({
          targetModules: o.targetModules,
          taskType: "CAUSAL_LM",
          r: o.r ?? 256,
          veraDropout: o.dropout ?? 0,
        }),
    },
  },
  defaultTargets: LORA_TARGETS,
} satisfies PeftMethod<VeraConfig>;
