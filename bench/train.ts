import type { FloatDType } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { Generator } from "../src/tensor/random.js";
import { smolLM2Config } from "./forward.js";
import { loraStepSeconds } from "./lora-step.js";
import { arg, resultLine, runPeer } from "./util.js";

/**
 * Seconds per LoRA training step (forward, backward, AdamW) on the SmolLM2-135M-shaped
 * Llama, batch 4 x 256, r=16 on q, k, v, o: with a float32 base, and with a bfloat16 base
 * and float32 adapters. Beside the same step in plain PyTorch. Options: --layers N (30),
 * --batch BxT (4x256), --runs N (1 on the reference backend, else 3), --dtypes list.
 */
export function main(args: string[]): void {
  const layers = Number(arg(args, "layers", "30"));
  const backend = getBackend().name;
  const runs = Number(arg(args, "runs", backend === "reference" ? "1" : "3"));
  const dtypes = arg(args, "dtypes", "float32,bfloat16").split(",") as FloatDType[];
  const [batch, seq] = arg(args, "batch", "4x256").split("x").map(Number);
  const peer = runPeer<Record<string, number>>("train.py", [
    "--layers",
    String(layers),
    "--runs",
    String(Math.max(3, runs)),
    "--dtypes",
    dtypes.join(","),
    "--batch",
    `${batch}x${seq}`,
  ]);
  console.log(
    `LoRA step (r=16 on q,k,v,o), SmolLM2-135M shape with ${layers} layers, batch ${batch}x${seq}, ${backend} backend; seconds per step, median of ${runs}`,
  );
  console.log("base       ours (s)   torch (s)   ratio");
  let headline: [number, number | null] | null = null;
  for (const dtype of dtypes) {
    const model = new DecoderForCausalLM(smolLM2Config(layers), { generator: new Generator(0) }).to(
      dtype,
    );
    const seconds = loraStepSeconds(model, batch, seq, runs);
    const theirs = peer?.[dtype] ?? null;
    console.log(
      `${dtype.padEnd(10)} ${seconds.toFixed(3).padStart(9)} ${(theirs?.toFixed(3) ?? "-").padStart(11)} ${(theirs ? (seconds / theirs).toFixed(3) : "-").padStart(7)}`,
    );
    if (headline === null) headline = [seconds, theirs];
  }
  if (headline !== null) resultLine("train", "s/step", headline[0], headline[1]);
}
