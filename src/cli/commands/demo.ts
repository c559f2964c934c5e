import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "../../io/tokenizer.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { getPeftModel, type PeftModel } from "../../peft/peft-model.js";
import { Tensor } from "../../tensor/tensor.js";
import { loadDataset } from "../../train/data.js";
import { Trainer } from "../../train/trainer.js";
import { type ArgSpec, formatHelp, parseArgs } from "../args.js";
import { buildDemoModel, DEMO_PAIRS, demoPrompt, writeDemoData } from "../demo/build.js";
import { DEMO_LORA } from "../demo/lora.js";
import { checkOutputDir } from "../options.js";

export const DEMO_SPEC: ArgSpec = {
  out: {
    type: "string",
    value: "DIR",
    help: "where the model, data and adapter go",
    default: "./peft-demo",
  },
  steps: { type: "integer", min: 1, help: "training steps", default: "200" },
  quiet: { type: "boolean", help: "print nothing but errors" },
};
export const DEMO_HELP = formatHelp("peft demo [options]", DEMO_SPEC);

function answer(
  model: { generate: PeftModel["generate"] },
  tokenizer: Tokenizer,
  word: string,
): string {
  const ids = tokenizer.encode(demoPrompt(word));
  const out = model.generate(Tensor.from([ids], [1, ids.length], "int64"), {
    maxNewTokens: 10,
    eosTokenId: tokenizer.eosTokenId,
  });
  return tokenizer
    .decode((out.toArray() as number[][])[0].slice(ids.length), { skipSpecialTokens: true })
    .trim();
}

/**
 * The embedded default: builds a tiny Llama and an opposites dataset, shows what the base
 * model answers, fine-tunes a LoRA adapter on it, shows the answers again and saves the
 * adapter. About a minute on 2 cores.
 */
export function demo(
  argv: string[],
  log: (line: string) => void = console.log,
): { before: number; after: number } {
  const a = parseArgs("demo", argv, DEMO_SPEC);
  if (a.quiet) log = () => {};
  const out = String(a.out ?? "peft-demo");
  checkOutputDir("demo", out);
  mkdirSync(out, { recursive: true });
  const modelDir = buildDemoModel(join(out, "base-model"));
  const dataPath = writeDemoData(join(out, "train.jsonl"));
  log(
    `base model: ${modelDir} (Llama, 2 layers, hidden 64, random weights); data: ${dataPath} (${DEMO_PAIRS.length} questions)`,
  );
  const tokenizer = Tokenizer.fromPretrained(modelDir);
  const peft = getPeftModel(AutoModelForCausalLM.fromPretrained(modelDir), DEMO_LORA);
  peft.printTrainableParameters(log);
  const score = (label: string): number => {
    log(`\n${label}:`);
    let right = 0;
    for (const [q, want] of DEMO_PAIRS) {
      const got = answer(peft, tokenizer, q);
      if (got === want) right++;
      log(
        `  ${demoPrompt(q).replace("\n", " ")} ${JSON.stringify(got)} ${got === want ? "right" : `wrong (want "${want}")`}`,
      );
    }
    log(`  ${right}/${DEMO_PAIRS.length} right`);
    return right;
  };
  const before = peft.disableAdapter(() => score("before fine-tuning (the base model)"));
  log(`\nfine-tuning LoRA (r 16, all linear layers) for ${a.steps ?? 200} steps:`);
  const trainer = new Trainer(
    peft,
    {
      outputDir: join(out, "run"),
      maxSteps: (a.steps as number) ?? 200,
      batchSize: 12,
      lr: 1e-2,
      schedule: "cosine",
      warmupSteps: 20,
      logEvery: 20,
      progress: false,
    },
    { train: loadDataset(dataPath, tokenizer) },
    tokenizer.padTokenId,
    {
      onLog: (m) =>
        log(
          `  step ${String(m.step).padStart(3)}  loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}  ${Math.round(m.tokensPerSecond)} tok/s`,
        ),
    },
  );
  trainer.train();
  const after = score("after fine-tuning (base + adapter)");
  const adapterDir = join(out, "adapter");
  peft.savePretrained(adapterDir);
  log(
    `\nadapter saved to ${adapterDir} (adapter_config.json + adapter_model.safetensors, loadable by PEFT)`,
  );
  log(
    `try: npx peft generate --model ${modelDir} --adapter ${adapterDir} --prompt "Q: opposite of hot?\\nA:"`,
  );
  return { before, after };
}
