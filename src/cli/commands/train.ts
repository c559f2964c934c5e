import { mkdirSync } from "node:fs";
import { ValueError } from "../../errors.js";
import { resolveModelDir } from "../../io/model-dir.js";
import { Tokenizer } from "../../io/tokenizer.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { getPeftModel } from "../../peft/peft-model.js";
import { PEFT_METHODS } from "../../peft/registry.js";
import type { AdapterConfig, CommandOptions } from "../../peft/tuners/tuner.js";
import { manualSeed } from "../../tensor/random.js";
import { latestCheckpoint } from "../../train/checkpoint.js";
import { loadDataset, pack } from "../../train/data.js";
import { lockOutputDir } from "../../train/output-lock.js";
import { Trainer, type TrainingArguments } from "../../train/trainer.js";
import { type ArgSpec, formatHelp, type ParsedArgs, parseArgs, required } from "../args.js";
import { checkOutputDir, DTYPES, type DTypeChoice, modelContext } from "../options.js";

/** Every --method name, with the config builder of the method that answers to it. */
const METHOD_COMMANDS = new Map(
  Object.values(PEFT_METHODS).flatMap((m) =>
    Object.entries(m.command.names as Record<string, (o: CommandOptions) => AdapterConfig>),
  ),
);
const METHOD_OPTIONS: ArgSpec = Object.assign(
  {},
  ...Object.values(PEFT_METHODS).map((m) => ("options" in m.command ? m.command.options : {})),
);

export const TRAIN_SPEC: ArgSpec = {
  model: {
    type: "string",
    value: "DIR",
    help: "the base model: a directory or hub id",
    required: true,
  },
  data: {
    type: "string",
    value: "FILE",
    help: "the training set (JSONL: text, prompt/completion or messages)",
    required: true,
  },
  evalData: { type: "string", value: "FILE", help: "an evaluation set in the same format" },
  out: {
    type: "string",
    value: "DIR",
    help: "where the adapter, checkpoints and metrics.jsonl go",
    required: true,
  },
  method: {
    type: "string",
    choices: [...METHOD_COMMANDS.keys()],
    help: "the adapter",
    default: "lora",
  },
  r: { type: "integer", min: 1, help: "the rank", default: "8, VeRA 256" },
  alpha: { type: "number", help: "LoRA's alpha (scaling alpha/r)", default: "16" },
  dropout: {
    type: "number",
    min: 0,
    value: "P",
    help: "dropout on the adapter's input",
    default: "0",
  },
  targetModules: {
    type: "list",
    value: "a,b|all-linear",
    help: "the layers to adapt",
    default: "all-linear",
  },
  dtype: {
    type: "string",
    choices: DTYPES,
    help: "the base weights in memory (auto: config.json's torch_dtype); with --load-in-4bit, the compute dtype",
    default: "float32",
  },
  loadIn4bit: {
    type: "boolean",
    help: "QLoRA: quantise linear layers to 4 bits while loading (double quantisation)",
  },
  quantType: {
    type: "string",
    choices: ["nf4", "fp4"],
    help: "the 4-bit data type",
    default: "nf4",
  },
  precision: {
    type: "string",
    choices: ["float32", "bfloat16", "float16"],
    help: "autocast precision of the steps; float16 adds loss scaling",
    default: "float32",
  },
  epochs: { type: "integer", min: 1, help: "passes over the training set", default: "1" },
  maxSteps: {
    type: "integer",
    min: 1,
    help: "stop after this many optimizer steps (overrides --epochs)",
  },
  lr: { type: "number", min: 0, value: "X", help: "the peak learning rate", default: "2e-4" },
  batchSize: { type: "integer", min: 1, help: "examples per micro-batch", default: "4" },
  gradAccum: { type: "integer", min: 1, help: "micro-batches per optimizer step", default: "1" },
  schedule: {
    type: "string",
    choices: ["constant", "linear", "cosine"],
    help: "the learning-rate schedule after warmup",
    default: "linear",
  },
  warmupSteps: { type: "integer", min: 0, help: "steps of linear warmup", default: "0" },
  weightDecay: {
    type: "number",
    min: 0,
    value: "X",
    help: "AdamW's decoupled weight decay",
    default: "0",
  },
  maxGradNorm: {
    type: "number",
    min: 0,
    value: "X",
    help: "clip the gradients' global norm (0: no clipping)",
    default: "1",
  },
  maxLength: {
    type: "integer",
    min: 1,
    help: "examples are cut to this many tokens",
    default: "the model's context",
  },
  packing: { type: "boolean", help: "concatenate examples into blocks of --max-length tokens" },
  saveEvery: {
    type: "integer",
    min: 0,
    help: "write a checkpoint every N steps (0: never)",
    default: "0",
  },
  evalEvery: {
    type: "integer",
    min: 0,
    help: "evaluate on --eval-data every N steps",
    default: "0",
  },
  logEvery: { type: "integer", min: 1, help: "log the loss every N steps", default: "10" },
  seed: {
    type: "integer",
    min: 0,
    help: "the seed of the adapter's initialisation, dropout and shuffling",
    default: "42",
  },
  resume: { type: "boolean", help: "continue from the newest checkpoint in --out" },
  quiet: { type: "boolean", help: "print nothing but errors" },
  ...METHOD_OPTIONS,
};

export const TRAIN_HELP = formatHelp(
  "peft train --model DIR --data FILE.jsonl --out DIR [options]",
  TRAIN_SPEC,
);

function adapterConfig(method: string, a: Record<string, unknown>): AdapterConfig {
  const make = METHOD_COMMANDS.get(method);
  if (make === undefined)
    throw new ValueError(
      `peft train: --method must be one of ${[...METHOD_COMMANDS.keys()].join(", ")}, got "${method}"`,
    );
  const targetModules = (a.targetModules as string[] | undefined) ?? ["all-linear"];
  const targets =
    targetModules.length === 1 && targetModules[0] === "all-linear" ? "all-linear" : targetModules;
  return make({ ...a, targetModules: targets } as CommandOptions);
}

/**
 * --max-length defaults to the model's context (transformers' tokenizers cut at
 * model_max_length); past a hard limit (learned positions) it cannot run at all.
 */
function chooseMaxLength(modelId: string, requested: number | undefined): number {
  const context = modelContext(modelId);
  if (requested === undefined) return context.length ?? 2048;
  if (context.hard && context.length !== null && requested > context.length)
    throw new ValueError(
      `peft train: --max-length ${requested} is longer than the model's context of ${context.length} positions (n_positions in config.json)`,
    );
  return requested;
}

export function train(argv: string[]): void {
  const a = parseArgs("train", argv, TRAIN_SPEC);
  const modelId = required(a, "model", "train");
  const dataPath = required(a, "data", "train");
  const out = required(a, "out", "train");
  checkOutputDir("train", out, { "--model": resolveModelDir(modelId) });
  // Held for the whole run, checkpoints and the final save included; a second run fails now.
  mkdirSync(out, { recursive: true });
  const release = lockOutputDir(out);
  try {
    runTraining(a, modelId, dataPath, out);
  } finally {
    release();
  }
}

function runTraining(a: ParsedArgs, modelId: string, dataPath: string, out: string): void {
  const dtype = (a.dtype as DTypeChoice | undefined) ?? "float32";
  const tokenizer = Tokenizer.fromPretrained(modelId);
  const maxLength = chooseMaxLength(modelId, a.maxLength as number | undefined);
  let examples = loadDataset(dataPath, tokenizer, maxLength);
  if (a.packing) examples = pack(examples, maxLength);
  const evalExamples = a.evalData
    ? loadDataset(String(a.evalData), tokenizer, maxLength)
    : undefined;
  // QLoRA: linear layers quantised while loading, computing in --dtype.
  const quantization = a.loadIn4bit
    ? {
        loadIn4bit: true,
        quantType: (a.quantType as "nf4" | "fp4" | undefined) ?? "nf4",
        doubleQuant: true,
      }
    : undefined;
  const model = AutoModelForCausalLM.fromPretrained(modelId, { dtype, quantization });
  // The adapter's random initialisation comes from the seeded default generator.
  manualSeed((a.seed as number | undefined) ?? 42);
  const peft = getPeftModel(model, adapterConfig(String(a.method ?? "lora"), a));
  const log = a.quiet ? () => {} : (line: string) => console.log(line);
  peft.printTrainableParameters(log);
  const args: TrainingArguments = {
    outputDir: out,
    epochs: a.epochs as number | undefined,
    maxSteps: a.maxSteps as number | undefined,
    lr: a.lr as number | undefined,
    batchSize: a.batchSize as number | undefined,
    gradientAccumulation: a.gradAccum as number | undefined,
    schedule: a.schedule as TrainingArguments["schedule"],
    warmupSteps: a.warmupSteps as number | undefined,
    weightDecay: a.weightDecay as number | undefined,
    maxGradNorm: a.maxGradNorm as number | undefined,
    precision: a.precision as TrainingArguments["precision"],
    saveEvery: a.saveEvery as number | undefined,
    evalEvery: a.evalEvery as number | undefined,
    logEvery: a.logEvery as number | undefined,
    seed: a.seed as number | undefined,
  };
  for (const k of Object.keys(args) as (keyof TrainingArguments)[])
    if (args[k] === undefined) delete args[k];
  const trainer = new Trainer(
    peft,
    args,
    { train: examples, eval: evalExamples },
    tokenizer.padTokenId,
    {
      onLog: (m) =>
        log(
          JSON.stringify({
            step: m.step,
            loss: Number(m.loss.toFixed(6)),
            lr: m.lr,
            tokensPerSecond: Math.round(m.tokensPerSecond),
          }),
        ),
      onEvaluate: (m) => log(JSON.stringify(m)),
      onSave: (dir) => log(`saved checkpoint ${dir}`),
    },
  );
  if (a.resume) {
    const last = latestCheckpoint(out);
    if (last === null) log(`no checkpoint in ${out}; starting from the beginning`);
    else {
      trainer.resumeFrom(last);
      log(`resumed from ${last} (step ${trainer.step})`);
    }
  }
  const result = trainer.train();
  peft.savePretrained(out);
  log(
    `trained ${result.steps} steps; final loss ${result.losses[result.losses.length - 1]?.toFixed(4)}; adapter saved to ${out}`,
  );
}
