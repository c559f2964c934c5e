import { resolveModelDir } from "../../io/model-dir.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { saveModelDirectory } from "../../models/save.js";
import { PeftModel } from "../../peft/peft-model.js";
import { type ArgSpec, formatHelp, parseArgs, required } from "../args.js";
import { checkOutputDir, DTYPES, type DTypeChoice } from "../options.js";

export const MERGE_SPEC: ArgSpec = {
  model: {
    type: "string",
    value: "DIR",
    help: "the base model: a directory or hub id",
    required: true,
  },
  adapter: { type: "string", value: "DIR", help: "the adapter directory", required: true },
  out: {
    type: "string",
    value: "DIR",
    help: "the merged model's directory (not the model's own)",
    required: true,
  },
  dtype: {
    type: "string",
    choices: DTYPES,
    help: "the base weights in memory (auto: config.json's torch_dtype)",
    default: "auto",
  },
  dequantize: {
    type: "string",
    choices: ["float32", "bfloat16", "float16"],
    help: "a 4-bit base becomes a dense model of this dtype, merged in full precision (without it, the merged weights are quantised again)",
  },
};
export const MERGE_HELP = formatHelp(
  "peft merge --model DIR --adapter DIR --out DIR [options]",
  MERGE_SPEC,
);

/** Merges an adapter into its base model and writes a plain model directory. */
export function merge(argv: string[]): void {
  const a = parseArgs("merge", argv, MERGE_SPEC);
  const modelId = required(a, "model", "merge");
  const modelDir = resolveModelDir(modelId);
  const adapterDir = required(a, "adapter", "merge");
  const out = required(a, "out", "merge");
  checkOutputDir("merge", out, { "--model": modelDir, "--adapter": adapterDir });
  const model = AutoModelForCausalLM.fromPretrained(modelId, {
    dtype: (a.dtype as DTypeChoice | undefined) ?? "auto",
  });
  const merged = PeftModel.fromPretrained(model, adapterDir).mergeAndUnload({
    dequantize: a.dequantize as "float32" | undefined,
  });
  saveModelDirectory(merged, modelDir, out);
  console.log(`merged model written to ${out}`);
}
