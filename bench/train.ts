import type { FloatDType } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { Generator } from "../src/tensor/random.js";
import { smolLM2Config } from "./forward.js";
import { gemmFloor } from "./gemm-floor.js";
import { loraStep } from "./lora-step.js";
import { arg, resultLine, runPeer, timeIt } from "./util.js";

/**
 * Seconds per LoRA training step (forward, backward, AdamW) on the SmolLM2-135M-shaped
 * Llama, batch 4 x 256, r=16 on q, k, v, o: with a float32 base, and with a bfloat16 base
 * and float32 adapters. Beside the same step in plain PyTorch, and beside the step's
 * arithmetic floor (gemm-floor.ts): its matrix products timed alone, at the same shapes,
 * in the same run. Options: --layers N (30), --batch BxT (4x256), --runs N (1 on the
 * reference backend, else 3), --dtypes list.
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
  const config = smolLM2Config(layers);
  console.log(
    `LoRA step (r=16 on q,k,v,o), SmolLM2-135M shape with ${layers} layers, batch ${batch}x${seq}, ${backend} backend; seconds per step, median of ${runs}`,
  );
  console.log(
    "base       ours (s)   torch (s)   ratio   TFLOP   floor (s)   GFLOP/s alone   efficiency",
  );
  const lines: (() => void)[] = [];
  for (const dtype of dtypes) {
    const model = new DecoderForCausalLM(config, { generator: new Generator(0) }).to(dtype);
    const step = loraStep(model, batch, seq);
    const seconds = timeIt(step, runs, 0);
    const floor = gemmFloor(step);
    const theirs = peer?.[dtype] ?? null;
    const efficiency = floor.seconds / seconds;
    console.log(
      [
        dtype.padEnd(10),
        seconds.toFixed(3).padStart(9),
        (theirs?.toFixed(3) ?? "-").padStart(11),
        (theirs ? (seconds / theirs).toFixed(3) : "-").padStart(7),
        (floor.flops / 1e12).toFixed(3).padStart(7),
        floor.seconds.toFixed(3).padStart(11),
        (floor.rate / 1e9).toFixed(0).padStart(15),
        efficiency.toFixed(3).padStart(12),
      ].join(" "),
    );
    lines.push(() =>
      resultLine("train", "s/step", seconds, theirs, {
        dtype,
        flops: floor.flops,
        floor: floor.seconds,
        efficiency,
      }),
    );
  }
  for (const line of lines) line();
}
