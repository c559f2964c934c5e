import { ValueError } from "../../errors.js";
import { Tokenizer } from "../../io/tokenizer.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { getPeftModel } from "../../peft/peft-model.js";
import { LoraConfig } from "../../peft/tuners/lora/config.js";
import type { AdapterConfig } from "../../peft/tuners/tuner.js";
import { VeraConfig } from "../../peft/tuners/vera/config.js";
import { manualSeed } from "../../tensor/random.js";
import { latestCheckpoint } from "../../train/checkpoint.js";
import { loadDataset, pack } from "../../train/data.js";
import { Trainer, type TrainingArguments } from "../../train/trainer.js";
import { type ArgSpec, parseArgs, required } from "../args.js";

export const TRAIN_SPEC: ArgSpec = {
  model: "string",
  data: "string",
  evalData: "string",
  out: "string",
  method: "string",
  r: "number",
  alpha: "number",
  dropout: "number",
  targetModules: "list",
  dtype: "string",
  precision: "string",
  loadIn4bit: "boolean",
  quantType: "string",
  epochs: "number",
  maxSteps: "number",
  lr: "number",
  batchSize: "number",
  gradAccum: "number",
  schedule: "string",
  warmupSteps: "number",
  weightDecay: "number",
  maxGradNorm: "number",
  maxLength: "number",
  packing: "boolean",
  saveEvery: "number",
  evalEvery: "number",
  logEvery: "number",
  seed: "number",
  resume: "boolean",
  quiet: "boolean",
};

export const TRAIN_HELP = `peft train --model DIR --data FILE.jsonl --out DIR [options]
  --method lora|dora|vera   (lora)     --r N (8)  --alpha N (16)  --dropout P (0)
  --target-modules a,b|all-linear (all-linear)
  --dtype float32|bfloat16|float16 (float32: the base weights in memory)
  --load-in-4bit [--quant-type nf4|fp4] (QLoRA: linear layers quantised while loading; --dtype is the compute dtype)
  --precision float32|bfloat16|float16 (float32: autocast; float16 adds loss scaling)
  --epochs N (1)  --max-steps N  --lr X (2e-4)  --batch-size N (4)  --grad-accum N (1)
  --schedule constant|linear|cosine (linear)  --warmup-steps N (0)  --weight-decay X (0)
  --max-grad-norm X (1)  --max-length N (512)  --packing  --eval-data FILE  --eval-every N
  --save-every N  --resume (continue from the newest checkpoint in --out)  --seed N (42)
  --config FILE.json|yaml (the same settings as a file; flags win)`;

function adapterConfig(method: string, a: Record<string, unknown>): AdapterConfig {
  const targetModules = (a.targetModules as string[] | undefined) ?? ["all-linear"];
  const targets =
    targetModules.length === 1 && targetModules[0] === "all-linear" ? "all-linear" : targetModules;
  const common = { targetModules: targets, taskType: "CAUSAL_LM" as const };
  if (method === "lora" || method === "dora") {
    return new LoraConfig({
      ...common,
      r: (a.r as number) ?? 8,
      loraAlpha: (a.alpha as number) ?? 16,
      loraDropout: (a.dropout as number) ?? 0,
      useDora: method === "dora",
    });
  }
  if (method === "vera")
    return new VeraConfig({
      ...common,
      r: (a.r as number) ?? 256,
      veraDropout: (a.dropout as number) ?? 0,
    });
  throw new ValueError(`peft train: --method must be lora, dora or vera, got "${method}"`);
}

export function train(argv: string[]): void {
  const a = parseArgs("train", argv, TRAIN_SPEC);
  const modelDir = required(a, "model", "train");
  const dataPath = required(a, "data", "train");
  const out = required(a, "out", "train");
  const dtype = (a.dtype as string | undefined) ?? "float32";
  if (!["float32", "bfloat16", "float16"].includes(dtype))
    throw new ValueError(
      `peft train: --dtype must be float32, bfloat16 or float16, got "${dtype}"`,
    );
  const tokenizer = Tokenizer.fromPretrained(modelDir);
  const maxLength = (a.maxLength as number | undefined) ?? 512;
  let examples = loadDataset(dataPath, tokenizer, maxLength);
  if (a.packing) examples = pack(examples, maxLength);
  const evalExamples = a.evalData
    ? loadDataset(String(a.evalData), tokenizer, maxLength)
    : undefined;
  // QLoRA: linear layers quantised to NF4 (double quantisation) while loading, computing in --dtype.
  const quantization = a.loadIn4bit
    ? {
        loadIn4bit: true,
        quantType: (a.quantType as "nf4" | "fp4" | undefined) ?? "nf4",
        doubleQuant: true,
        computeDtype: dtype as "float32",
      }
    : undefined;
  const model = AutoModelForCausalLM.fromPretrained(modelDir, {
    dtype: dtype as "float32",
    quantization,
  });
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
  if (
    args.precision !== undefined &&
    !["float32", "bfloat16", "float16"].includes(args.precision)
  ) {
    throw new ValueError(
      `peft train: --precision must be float32, bfloat16 or float16, got "${args.precision}"`,
    );
  }
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
