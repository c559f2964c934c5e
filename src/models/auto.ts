import type { FloatDType } from "../backend/dtype.js";
import { isFloat, withAllocationBudget } from "../backend/dtype.js";
import { FileFormatError, ValueError } from "../errors.js";
import { Checkpoint } from "../io/checkpoint.js";
import { ConfigReader } from "../io/config.js";
import type { ModelFiles } from "../io/files/model-files.js";
import { modelFiles } from "../io/files/resolve.js";
import type { Module } from "../nn/module.js";
import {
  configQuantization,
  overriddenOptions,
  type QuantizationOptions,
  quantizeLinears,
} from "../quant/load.js";
import type { Tensor } from "../tensor/tensor.js";
import { BertForSequenceClassification, parseBertConfig } from "./bert/model.js";
import { CausalLMBase } from "./causal-lm.js";
import { DECODER_FAMILIES, parseDecoderConfig } from "./decoder/families.js";
import { DecoderForCausalLM } from "./decoder/model.js";
import { loadGenerationConfig } from "./generation-config.js";
import { GPT2LMHeadModel, parseGPT2Config } from "./gpt2/model.js";
import { loadWeights } from "./load.js";
import { setModelNameOrPath } from "./name-or-path.js";
import { NonFiniteWeights } from "./non-finite.js";
import { parseRobertaConfig, RobertaForSequenceClassification } from "./roberta/model.js";

export interface FromPretrainedOptions {
  /** Quantise linear layers to 4 bits while loading (QLoRA); pre-quantised checkpoints are detected from config.json. */
  quantization?: QuantizationOptions;
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

export function chooseDType(
  config: ConfigReader,
  requested: FloatDType | "auto" | undefined,
): FloatDType {
  if (requested === undefined) return "float32";
  if (requested !== "auto") {
    if (!isFloat(requested))
      throw new ValueError(
        `fromPretrained: dtype must be float32, bfloat16, float16 or "auto", got ${JSON.stringify(requested)}`,
      );
    return requested;
  }
  const t = config.has("torch_dtype") ? config.string("torch_dtype") : "float32";
  if (t !== "float32" && t !== "bfloat16" && t !== "float16") {
    throw new FileFormatError(
      config.file,
      `torch_dtype "${t}" cannot be used with dtype "auto"; pass dtype explicitly`,
    );
  }
  return t;
}

/** Builds, loads and returns a model in eval mode, with frozen weights. */
export function loadPretrained<M extends Module>(
  pathOrFiles: string | ModelFiles,
  options: FromPretrainedOptions,
  pick: (config: ConfigReader) => Architecture<M>,
): M {
  const files = modelFiles(pathOrFiles);
  const dir = files.location;
  const config = ConfigReader.fromFiles(files);
  const arch = pick(config);
  const dtype = chooseDType(config, options.dtype);
  const checkpoint = Checkpoint.open(files);
  try {
    const model = buildWithin(arch, config, checkpoint);
    if (model instanceof CausalLMBase) model.generationConfig = loadGenerationConfig(files, config);
    const fromConfig = configQuantization(config);
    if (fromConfig !== null) {
      const overridden = overriddenOptions(fromConfig, options.quantization);
      if (overridden.length > 0)
        (options.onWarning ?? console.warn)(
          `${dir} is already quantised; its quantization_config is used and these options are ignored: ${overridden.join("; ")}`,
        );
    }
    const quant = fromConfig ?? options.quantization ?? null;
    const nonFinite = new NonFiniteWeights();
    const inspect = (name: string, t: Tensor) => nonFinite.check(name, t);
    const used = quant?.loadIn4bit
      ? quantizeLinears(
          model,
          checkpoint,
          { computeDtype: dtype, ...quant },
          fromConfig !== null,
          inspect,
        )
      : new Set<string>();
    const report = loadWeights(model, checkpoint, dtype, {
      ignore: arch.ignore,
      rename: arch.rename,
      alreadyUsed: used,
      inspect,
    });
    const poisoned = nonFinite.warning(dir);
    if (poisoned !== null) (options.onWarning ?? console.warn)(poisoned);
    if (report.unexpected.length > 0) {
      (options.onWarning ?? console.warn)(
        `${dir}: ${report.unexpected.length} checkpoint tensor(s) not used by ${model.constructor.name}: ${report.unexpected.slice(0, 5).join(", ")}`,
      );
    }
    model.requiresGrad_(false);
    setModelNameOrPath(model, typeof pathOrFiles === "string" ? pathOrFiles : files.location);
    return model.eval();
  } finally {
    checkpoint.close();
  }
}

/**
 * A model built from config.json takes, in float32, at most 8x its checkpoint's bytes
 * (8x for packed 4-bit weights, 2x for 16-bit ones, plus a tied head) and a little for
 * buffers. Sizes in config.json beyond that do not describe this checkpoint: say so
 * before they exhaust memory.
 */
function buildWithin<M extends Module>(
  arch: Architecture<M>,
  config: ConfigReader,
  checkpoint: Checkpoint,
): M {
  const stored = checkpoint.dataBytes;
  const limit = 8 * stored + (64 << 20);
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  return withAllocationBudget(
    limit,
    (bytes) => {
      throw new FileFormatError(
        config.file,
        `the sizes in config.json (num_hidden_layers, hidden_size, intermediate_size, vocab_size, heads...) describe a model of more than ${mib(bytes)} in float32, but the checkpoint in ${checkpoint.dir} holds ${mib(stored)}: config.json does not belong to these weights`,
      );
    },
    () => arch.build(config),
  );
}

export type CausalLM = DecoderForCausalLM | GPT2LMHeadModel;

const decoder: Architecture<CausalLM> = {
  build: (c) => new DecoderForCausalLM(parseDecoderConfig(c), { init: "zeros" }),
  ignore: [/rotary_emb\.inv_freq$/],
};
const CAUSAL_LM: Record<string, Architecture<CausalLM>> = {
  ...Object.fromEntries(Object.keys(DECODER_FAMILIES).map((type) => [type, decoder])),
  gpt2: {
    build: (c) => new GPT2LMHeadModel(parseGPT2Config(c), { init: "zeros" }),
    // Older checkpoints store the causal-mask buffers and a copy of the tied head.
    ignore: [/\.attn\.(masked_)?bias$/, /^lm_head\.weight$/],
  },
};

export type SequenceClassifier = BertForSequenceClassification | RobertaForSequenceClassification;

const SEQUENCE_CLASSIFICATION: Record<string, Architecture<SequenceClassifier>> = {
  bert: {
    build: (c) => new BertForSequenceClassification(parseBertConfig(c), { init: "zeros" }),
    ignore: [/position_ids$/],
  },
  roberta: {
    build: (c) => new RobertaForSequenceClassification(parseRobertaConfig(c), { init: "zeros" }),
    ignore: [/position_ids$/],
  },
};

function pickFrom<M extends Module>(table: Record<string, Architecture<M>>, kind: string) {
  return (config: ConfigReader): Architecture<M> => {
    const type = config.string("model_type");
    const arch = Object.hasOwn(table, type) ? table[type] : undefined;
    if (arch === undefined) {
      throw new FileFormatError(
        config.file,
        `model_type "${type}" is not supported by ${kind}; supported: ${Object.keys(table).join(", ")}`,
      );
    }
    return arch;
  };
}

export const AutoModelForCausalLM = {
  /**
   * Loads a causal language model from a local directory, the local Hugging Face cache, or
   * a model's files in memory (fetchModelFiles, filesFromBlobs), with its generation defaults (`model.generationConfig`) from generation_config.json.
   */
  fromPretrained(pathOrFiles: string | ModelFiles, options: FromPretrainedOptions = {}): CausalLM {
    return loadPretrained(pathOrFiles, options, pickFrom(CAUSAL_LM, "AutoModelForCausalLM"));
  },
};

export const AutoModelForSequenceClassification = {
  /** Loads a sequence classifier (BERT, RoBERTa) from a local directory, the local Hugging Face cache, or a model's files in memory. */
  fromPretrained(
    pathOrFiles: string | ModelFiles,
    options: FromPretrainedOptions = {},
  ): SequenceClassifier {
    return loadPretrained(
      pathOrFiles,
      options,
      pickFrom(SEQUENCE_CLASSIFICATION, "AutoModelForSequenceClassification"),
    );
  },
};
