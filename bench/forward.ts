import type { FloatDType } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { type DecoderConfig, llamaConfig } from "../src/models/decoder/config.js";
import { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { randint } from "../src/tensor/creation.js";
import { Generator } from "../src/tensor/random.js";
import { noGrad } from "../src/tensor/state.js";
import { arg, median, resultLine, runPeer, seconds } from "./util.js";

/** SmolLM2-135M's shape: hidden 576, 30 layers, 9 heads, 3 KV heads, MLP 1536, vocab 49152, tied embeddings. */
export function smolLM2Config(layers = 30): DecoderConfig {
  return llamaConfig({
    vocabSize: 49152,
    hiddenSize: 576,
    intermediateSize: 1536,
    numLayers: layers,
    maxPositionEmbeddings: 8192,
    numHeads: 9,
    numKVHeads: 3,
    headDim: 64,
    rmsNormEps: 1e-5,
    rope: { theta: 100000, dim: 64, scaling: { type: "default" } },
    tieWordEmbeddings: true,
  });
}

/**
 * Prefill tokens/s (batch 4 x 256) and decode tokens/s (batch 1, 128 new tokens after a
 * 16-token prompt) of a SmolLM2-135M-shaped Llama with random weights, beside a plain
 * PyTorch implementation of the same model. Options: --layers N (default 30), --runs N
 * (default 1 on the reference backend, 3 otherwise), --dtypes float32,bfloat16,
 * --prefill BxT (default 4x256), --decode N (default 128).
 */
export function main(args: string[]): void {
  const layers = Number(arg(args, "layers", "30"));
  const backend = getBackend().name;
  const runs = Number(arg(args, "runs", backend === "reference" ? "1" : "3"));
  const dtypes = arg(args, "dtypes", "float32,bfloat16").split(",") as FloatDType[];
  const [batch, seq] = arg(args, "prefill", "4x256").split("x").map(Number);
  const newTokens = Number(arg(args, "decode", "128"));
  const peer = runPeer<Record<string, number>>("forward.py", [
    "--layers",
    String(layers),
    "--runs",
    String(Math.max(runs, 3)),
    "--dtypes",
    dtypes.join(","),
    "--prefill",
    `${batch}x${seq}`,
    "--decode",
    String(newTokens),
  ]);
  console.log(
    `SmolLM2-135M-shaped Llama (${layers} layers) on the ${backend} backend; tokens/s, median of ${runs} run(s)`,
  );
  console.log("dtype      phase            ours      torch     ratio");
  let headline: [number, number | null] | null = null;
  for (const dtype of dtypes) {
    const model = new DecoderForCausalLM(smolLM2Config(layers), { generator: new Generator(0) })
      .to(dtype)
      .eval();
    model.requiresGrad_(false);
    const ids = randint(0, 49152, [batch, seq], { seed: 1 });
    const prompt = randint(0, 49152, [1, 16], { seed: 2 });
    const prefill = median(
      Array.from({ length: runs }, () =>
        seconds(() => noGrad(() => model.forward({ inputIds: ids }))),
      ),
    );
    const decode = median(
      Array.from({ length: runs }, () =>
        seconds(() => model.generate(prompt, { maxNewTokens: newTokens })),
      ),
    );
    const rows: [string, number, number | null][] = [
      ["prefill", (batch * seq) / prefill, peer?.[`prefill:${dtype}`] ?? null],
      ["decode", newTokens / decode, peer?.[`decode:${dtype}`] ?? null],
    ];
    for (const [phase, ours, theirs] of rows) {
      console.log(
        `${dtype.padEnd(10)} ${`${phase}`.padEnd(12)} ${ours.toFixed(1).padStart(9)} ${(theirs?.toFixed(1) ?? "-").padStart(10)} ${(theirs ? (ours / theirs).toFixed(3) : "-").padStart(9)}`,
      );
      if (headline === null) headline = [ours, theirs];
    }
  }
  if (headline !== null) resultLine("forward", "tokens/s", headline[0], headline[1]);
}
