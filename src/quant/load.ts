import { type FloatDType, isFloat } from "../backend/dtype.js";
import { FileFormatError, ValueError } from "../errors.js";
import type { Checkpoint } from "../io/checkpoint.js";
import type { ConfigReader } from "../io/config.js";
import { Linear } from "../nn/layers.js";
import type { Module } from "../nn/module.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  Linear4bit,
  QUANT_STORAGES,
  type Quant4bitOptions,
  type QuantStorage,
  readQuantizedWeight,
} from "./linear4bit.js";

export interface QuantizationOptions {
  loadIn4bit: boolean;
  quantType?: "nf4" | "fp4";
  doubleQuant?: boolean;
  blocksize?: number;
  computeDtype?: FloatDType;
  /** The dtype checkpoints store the packed bytes as (bnb_4bit_quant_storage); default uint8. */
  quantStorage?: QuantStorage;
  /** Module names (suffix match) kept in full precision; the output head always is. */
  skipModules?: string[];
}

/** The quantization a config.json's quantization_config describes (a pre-quantised checkpoint), or null. */
export function configQuantization(config: ConfigReader): QuantizationOptions | null {
  const q = config.raw.quantization_config as Record<string, unknown> | undefined;
  if (q == null) return null;
  if (q.load_in_4bit !== true) {
    throw new FileFormatError(
      config.file,
      `quantization_config ${JSON.stringify(q).slice(0, 120)} is not a bitsandbytes 4-bit one; only load_in_4bit checkpoints are supported`,
    );
  }
  const compute = String(q.bnb_4bit_compute_dtype ?? "float32");
  const storage = String(q.bnb_4bit_quant_storage ?? "uint8");
  if (!QUANT_STORAGES.includes(storage as QuantStorage))
    throw new FileFormatError(
      config.file,
      `quantization_config.bnb_4bit_quant_storage must be one of ${QUANT_STORAGES.join(", ")}, found ${JSON.stringify(storage)}`,
    );
  return {
    loadIn4bit: true,
    quantType: q.bnb_4bit_quant_type === "fp4" ? "fp4" : "nf4",
    doubleQuant: q.bnb_4bit_use_double_quant === true,
    computeDtype: (["float32", "bfloat16", "float16"].includes(compute)
      ? compute
      : "float32") as FloatDType,
    quantStorage: storage as QuantStorage,
    skipModules: Array.isArray(q.llm_int8_skip_modules)
      ? (q.llm_int8_skip_modules as string[])
      : [],
  };
}

/**
 * The options a caller passed that a pre-quantised checkpoint's own quantization_config
 * overrides (transformers warns and uses the checkpoint's), as "field: asked, checkpoint has".
 */
export function overriddenOptions(
  checkpoint: QuantizationOptions,
  requested: QuantizationOptions | undefined,
): string[] {
  if (requested === undefined) return [];
  const fields = ["quantType", "doubleQuant", "computeDtype", "quantStorage", "blocksize"] as const;
  const out: string[] = [];
  for (const f of fields) {
    const asked = requested[f];
    if (asked !== undefined && asked !== checkpoint[f] && checkpoint[f] !== undefined)
      out.push(
        `${f}: asked ${JSON.stringify(asked)}, the checkpoint has ${JSON.stringify(checkpoint[f])}`,
      );
  }
  return out;
}

function skipped(name: string, skip: readonly string[]): boolean {
  return (
    name === "lm_head" ||
    name.endsWith(".lm_head") ||
    skip.some((s) => name === s || name.endsWith(`.${s}`) || name.startsWith(`${s}.`))
  );
}

/**
 * Replaces the model's linear layers (not the output head or skipped modules) by
 * Linear4bit ones, one at a time: from the checkpoint's packed weights when it is
 * pre-quantised, otherwise by reading each dense weight and quantising it at once, so
 * the whole model never sits in memory in full precision. Returns the checkpoint keys
 * it consumed.
 */
export function quantizeLinears(
  model: Module,
  checkpoint: Checkpoint,
  q: QuantizationOptions,
  prequantized: boolean,
  inspect: (name: string, t: Tensor) => void = () => {},
): Set<string> {
  if (!q.loadIn4bit) throw new ValueError("quantization: only loadIn4bit is supported");
  const used = new Set<string>();
  const options: Quant4bitOptions = {
    quantType: q.quantType,
    blocksize: q.blocksize,
    doubleQuant: q.doubleQuant,
    computeDtype: q.computeDtype,
    quantStorage: q.quantStorage,
  };
  const targets = [...model.namedModules()].filter(
    (e): e is [string, Linear] => e[1] instanceof Linear && !skipped(e[0], q.skipModules ?? []),
  );
  // Each dense weight is read into the same buffer and dropped once quantised (float32
  // at most; a float64 weight gets memory of its own).
  const scratch = new ArrayBuffer(
    prequantized ? 0 : 4 * Math.max(0, ...targets.map(([, m]) => m.inFeatures * m.outFeatures)),
  );
  for (const [name, m] of targets) {
    let layer: Linear4bit;
    if (prequantized) {
      const { packed, state, storage, keys } = readQuantizedWeight(checkpoint, name);
      for (const k of keys) {
        used.add(k);
        // The float statistics (absmax, nested absmax) carry a NaN weight's trace; the
        // packed bytes, even when stored as a float dtype (quant storage), are not values.
        if (k === `${name}.weight`) continue;
        const t = checkpoint.load(k);
        if (isFloat(t.dtype)) inspect(k, t);
      }
      // As bitsandbytes' from_prequantized: the stored tensor's dtype is the storage.
      layer = new Linear4bit(m.inFeatures, m.outFeatures, packed, state, {
        bias: m.bias,
        computeDtype: q.computeDtype,
        quantStorage: storage,
      });
    } else {
      const key = `${name}.weight`;
      used.add(key);
      const weight = checkpoint.load(key, scratch);
      inspect(key, weight);
      layer = Linear4bit.fromWeight(weight, m.bias, options);
    }
    const dot = name.lastIndexOf(".");
    (dot < 0 ? model : model.getModule(name.slice(0, dot))).setModule(name.slice(dot + 1), layer);
  }
  model.assignPaths();
  return used;
}
