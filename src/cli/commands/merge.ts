import { resolveModelDir } from "../../io/model-dir.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { saveModelDirectory } from "../../models/save.js";
import { PeftModel } from "../../peft/peft-model.js";
import { type ArgSpec, parseArgs, required } from "../args.js";

export const MERGE_SPEC: ArgSpec = {
  model: "string",
  adapter: "string",
  out: "string",
  dtype: "string",
  dequantize: "string",
};
export const MERGE_HELP = `peft merge --model DIR --adapter DIR --out DIR
  --dtype float32|bfloat16|float16|auto (auto: config.json's torch_dtype)
  --dequantize float32|bfloat16|float16 (a 4-bit base becomes a dense model of that dtype, merged in full precision;
                                        without it the merged weights are quantised again)`;

/** Merges an adapter into its base model and writes a plain model directory. */
export function merge(argv: string[]): void {
  const a = parseArgs("merge", argv, MERGE_SPEC);
  const modelDir = resolveModelDir(required(a, "model", "merge"));
  const out = required(a, "out", "merge");
  const model = AutoModelForCausalLM.fromPretrained(modelDir, {
    dtype: (a.dtype as "float32") ?? "auto",
  });
  const merged = PeftModel.fromPretrained(model, required(a, "adapter", "merge")).mergeAndUnload({
    dequantize: a.dequantize as "float32" | undefined,
  });
  saveModelDirectory(merged, modelDir, out);
  console.log(`merged model written to ${out}`);
}
