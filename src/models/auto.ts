import type { FloatDType } from "../backend/dtype.js";
import { isFloat } from "../backend/dtype.js";
import { FileFormatError, ValueError } from "../errors.js";
import { Checkpoint } from "../io/checkpoint.js";
import { ConfigReader } from "../io/config.js";
import { resolveModelDir } from "../io/model-dir.js";
import { join } from "node:path";
import type { Module } from "../nn/module.js";
import { parseLlamaConfig } from "./llama/config.js";
import { LlamaForCausalLM } from "./llama/model.js";
import { loadWeights } from "./load.js";

export interface FromPretrainedOptions {
  /** Weights are kept in this dtype in memory; "auto" uses config.json's torch_dtype. Default float32. */
  dtype?: FloatDType | "auto";
  /** Called with warnings (unexpected tensors in the checkpoint); default console.warn. */
  onWarning?: (message: string) => void;
}

interface Architecture<M extends Module> {
  build(config: ConfigReader): M;
  /** Checkpoint tensors that are expected but not loaded (non-persistent buffers of older versions). */
  ignore?: RegExp[];
  rename?: (name: string) => string;
}

export function chooseDType(config: ConfigReader, requested: FloatDType | "auto" | undefined): FloatDType {
  if (requested === undefined) return "float32";
  if (requested !== "auto") {
    if (!isFloat(requested)) throw new ValueError(`fromPretrained: dtype must be float32, bfloat16, float16 or "auto", got ${JSON.stringify(requested)}`);
    return requested;
  }
  const t = config.has("torch_dtype") ? config.string("torch_dtype") : "float32";
  if (t !== "float32" && t !== "bfloat16" && t !== "float16") {
    throw new FileFormatError(config.file, `torch_dtype "${t}" cannot be used with dtype "auto"; pass dtype explicitly`);
  }
  return t;
}

/** Builds, loads and returns a model in eval mode, with frozen weights. */
export function loadPretrained<M extends Module>(
  pathOrId: string,
  options: FromPretrainedOptions,
  pick: (config: ConfigReader) => Architecture<M>,
): M {
  const dir = resolveModelDir(pathOrId);
  const config = ConfigReader.fromFile(join(dir, "config.json"));
  const arch = pick(config);
  const dtype = chooseDType(config, options.dtype);
  const model = arch.build(config);
  const checkpoint = Checkpoint.open(dir);
  try {
    const report = loadWeights(model, checkpoint, dtype, { ignore: arch.ignore, rename: arch.rename });
    if (report.unexpected.length > 0) {
      (options.onWarning ?? console.warn)(
        `${dir}: ${report.unexpected.length} checkpoint tensor(s) not used by ${model.constructor.name}: ${report.unexpected.slice(0, 5).join(", ")}`,
      );
    }
  } finally {
    checkpoint.close();
  }
  model.requiresGrad_(false);
  return model.eval();
}

const CAUSAL_LM: Record<string, Architecture<LlamaForCausalLM>> = {
  llama: { build: (c) => new LlamaForCausalLM(parseLlamaConfig(c), { init: "zeros" }), ignore: [/rotary_emb\.inv_freq$/] },
};
CAUSAL_LM.qwen2 = CAUSAL_LM.llama;
CAUSAL_LM.mistral = CAUSAL_LM.llama;

function pickFrom<M extends Module>(table: Record<string, Architecture<M>>, kind: string) {
  return (config: ConfigReader): Architecture<M> => {
    const type = config.string("model_type");
    const arch = table[type];
    if (arch === undefined) {
      throw new FileFormatError(
        config.file,
        `model_type "${type}" is not supported by ${kind}; supported: ${Object.keys(table).join(", ")}`,
      );
    }
    return arch;
  };
}

export type CausalLM = LlamaForCausalLM;

export const AutoModelForCausalLM = {
  /** Loads a causal language model from a local directory or the local Hugging Face cache. */
  fromPretrained(pathOrId: string, options: FromPretrainedOptions = {}): CausalLM {
    return loadPretrained(pathOrId, options, pickFrom(CAUSAL_LM, "AutoModelForCausalLM"));
  },
};
