import { Tokenizer } from "../../io/tokenizer.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { PeftModel } from "../../peft/peft-model.js";
import { Tensor } from "../../tensor/tensor.js";
import { type ArgSpec, formatHelp, parseArgs, required } from "../args.js";
import { DTYPES, type DTypeChoice } from "../options.js";

export const GENERATE_SPEC: ArgSpec = {
  model: { type: "string", value: "DIR", help: "the model: a directory or hub id", required: true },
  adapter: { type: "string", value: "DIR", help: "an adapter directory to apply" },
  prompt: { type: "string", value: "TEXT", help: "the prompt (\\n is a newline)", required: true },
  chat: { type: "boolean", help: "wrap the prompt in the model's chat template" },
  maxNewTokens: {
    type: "integer",
    min: 0,
    help: "tokens to generate at most",
    default: "generation_config.json's, else 64",
  },
  doSample: {
    type: "boolean",
    help: "sample instead of taking the most likely token (--do-sample false: greedy)",
    default: "generation_config.json's, else greedy",
  },
  temperature: { type: "number", min: 0, value: "X", help: "sampling temperature", default: "1" },
  topK: {
    type: "integer",
    min: 0,
    help: "sample from the K most likely tokens (0: all)",
    default: "50",
  },
  topP: {
    type: "number",
    min: 0,
    value: "X",
    help: "sample from the smallest set of probability >= X",
    default: "1",
  },
  repetitionPenalty: {
    type: "number",
    min: 0,
    value: "X",
    help: "penalise tokens already present",
    default: "1",
  },
  seed: { type: "integer", min: 0, help: "the sampling seed" },
  stop: {
    type: "list",
    value: "TEXT,TEXT",
    help: "stop once the output contains one of these strings (kept in the output)",
  },
  dtype: {
    type: "string",
    choices: DTYPES,
    help: "the weights in memory (auto: config.json's torch_dtype)",
    default: "float32",
  },
};

export const GENERATE_HELP = formatHelp(
  "peft generate --model DIR [--adapter DIR] --prompt TEXT [options]",
  GENERATE_SPEC,
);

export function generateCommand(
  argv: string[],
  write: (s: string) => void = (s) => process.stdout.write(s),
): string {
  const a = parseArgs("generate", argv, GENERATE_SPEC);
  const modelDir = required(a, "model", "generate");
  // A literal \n in the prompt (as typed in a shell) means a newline.
  const prompt = required(a, "prompt", "generate").replace(/\\n/g, "\n");
  const tokenizer = Tokenizer.fromPretrained(modelDir);
  const model = AutoModelForCausalLM.fromPretrained(modelDir, {
    dtype: (a.dtype as DTypeChoice | undefined) ?? "float32",
  });
  const runner = a.adapter ? PeftModel.fromPretrained(model, String(a.adapter)) : model;
  const text = a.chat
    ? tokenizer.applyChatTemplate([{ role: "user", content: prompt }], {
        addGenerationPrompt: true,
      })
    : prompt;
  const ids = tokenizer.encode(text);
  let produced = "";
  const all: number[] = [];
  runner.generate(Tensor.from([ids], [1, ids.length], "int64"), {
    // Unset options fall back to generation_config.json (EOS list, sampling settings).
    maxNewTokens:
      (a.maxNewTokens as number | undefined) ??
      (model.generationConfig.maxNewTokens === undefined &&
      model.generationConfig.maxLength === undefined
        ? 64
        : undefined),
    doSample: a.doSample as boolean | undefined,
    temperature: a.temperature as number | undefined,
    topK: a.topK as number | undefined,
    topP: a.topP as number | undefined,
    repetitionPenalty: a.repetitionPenalty as number | undefined,
    seed: a.seed as number | undefined,
    eosTokenId: model.generationConfig.eosTokenId === undefined ? tokenizer.eosTokenId : undefined,
    stopStrings: a.stop as string[] | undefined,
    tokenizer,
    onWarning: (m) => process.stderr.write(`peft ${m}\n`),
    streamer: (tokens) => {
      // Decode the whole continuation each time so multi-byte characters print once complete.
      all.push(tokens[0]);
      const now = tokenizer.decode(all, { skipSpecialTokens: true });
      if (now.startsWith(produced) && !now.endsWith("\uFFFD")) {
        write(now.slice(produced.length));
        produced = now;
      }
    },
  });
  // Whatever is still held back (an incomplete character at a stop) is printed too.
  const final = tokenizer.decode(all, { skipSpecialTokens: true });
  if (final.startsWith(produced)) write(final.slice(produced.length));
  write("\n");
  return final.startsWith(produced) ? final : produced;
}
