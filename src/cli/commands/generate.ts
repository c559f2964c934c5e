import { Tokenizer } from "../../io/tokenizer.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { PeftModel } from "../../peft/peft-model.js";
import { Tensor } from "../../tensor/tensor.js";
import { type ArgSpec, parseArgs, required } from "../args.js";

export const GENERATE_SPEC: ArgSpec = {
  model: "string",
  adapter: "string",
  prompt: "string",
  chat: "boolean",
  maxNewTokens: "number",
  doSample: "boolean",
  temperature: "number",
  topK: "number",
  topP: "number",
  repetitionPenalty: "number",
  seed: "number",
  dtype: "string",
};

export const GENERATE_HELP = `peft generate --model DIR [--adapter DIR] --prompt TEXT [options]
  --chat (wrap the prompt in the model's chat template)  --max-new-tokens N (64)
  --do-sample  --temperature X  --top-k N  --top-p X  --repetition-penalty X  --seed N
  --dtype float32|bfloat16|float16 (float32)`;

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
    dtype: (a.dtype as "float32") ?? "float32",
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
    maxNewTokens: (a.maxNewTokens as number) ?? 64,
    doSample: Boolean(a.doSample),
    temperature: a.temperature as number | undefined,
    topK: a.topK as number | undefined,
    topP: a.topP as number | undefined,
    repetitionPenalty: a.repetitionPenalty as number | undefined,
    seed: a.seed as number | undefined,
    eosTokenId: tokenizer.eosTokenId,
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
  write("\n");
  return produced;
}
