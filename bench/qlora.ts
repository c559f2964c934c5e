import type { FloatDType } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { Linear } from "../src/nn/layers.js";
import type { Module } from "../src/nn/module.js";
import { Linear4bit } from "../src/quant/linear4bit.js";
import { Generator } from "../src/tensor/random.js";
import { smolLM2Config } from "./forward.js";
import { loraStepSeconds } from "./lora-step.js";
import { arg, resultLine } from "./util.js";

/** Bytes the model's weights occupy: parameter storage plus packed 4-bit codes and statistics. */
function weightBytes(model: Module): number {
  let bytes = 0;
  for (const t of model.parameters()) bytes += t.data.byteLength;
  for (const [, m] of model.namedModules()) if (m instanceof Linear4bit) bytes += m.quantizedBytes;
  return bytes;
}

/** The SmolLM2-135M-shaped model in `dtype`, its decoder linear layers NF4 (double quant) when `fourBit`. */
export function build(layers: number, dtype: FloatDType, fourBit: boolean): DecoderForCausalLM {
  const model = new DecoderForCausalLM(smolLM2Config(layers), { generator: new Generator(0) });
  if (fourBit) {
    // Quantise every decoder linear layer (the tied output head and the embeddings stay), as transformers does.
    for (const [name, m] of [...model.namedModules()]) {
      if (!(m instanceof Linear)) continue;
      const dot = name.lastIndexOf(".");
      model.getModule(name.slice(0, dot)).setModule(
        name.slice(dot + 1),
        Linear4bit.fromWeight(m.weight, m.bias, {
          quantType: "nf4",
          doubleQuant: true,
          computeDtype: dtype,
        }),
      );
    }
    model.assignPaths();
  }
  return model.to(dtype);
}

/**
 * QLoRA on the SmolLM2-135M-shaped model: weight memory of the NF4 model (double quant,
 * bf16 embeddings) against float32 and bfloat16, and one LoRA training step (r=16 on
 * q, k, v, o) on the NF4 base against the same step on a bfloat16 base. Targets: memory
 * <= 0.3x float32, step time <= 1.3x. Options: --layers N (30), --batch BxT (4x256), --runs N,
 * --skip-step (memory only).
 */
export function main(args: string[]): void {
  const layers = Number(arg(args, "layers", "30"));
  const [batch, seq] = arg(args, "batch", "4x256").split("x").map(Number);
  const runs = Number(arg(args, "runs", getBackend().name === "reference" ? "1" : "3"));
  const f32 = weightBytes(build(layers, "float32", false));
  const bf16 = weightBytes(build(layers, "bfloat16", false));
  const nf4 = weightBytes(build(layers, "bfloat16", true));
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(
    `SmolLM2-135M shape, ${layers} layers: weights float32 ${mb(f32)}, bfloat16 ${mb(bf16)}, NF4 + bf16 embeddings ${mb(nf4)} (${(nf4 / f32).toFixed(3)}x float32)`,
  );
  resultLine("qlora-memory", "fraction of float32 bytes", nf4 / f32, null);
  if (args.includes("--skip-step")) return;
  const step = (fourBit: boolean): number =>
    loraStepSeconds(build(layers, "bfloat16", fourBit), batch, seq, runs);
  const q = step(true);
  const b = step(false);
  console.log(
    `LoRA step, batch ${batch}x${seq}: NF4 base ${q.toFixed(3)} s, bfloat16 base ${b.toFixed(3)} s (${(q / b).toFixed(3)}x)`,
  );
  resultLine("qlora-step", "fraction of the bfloat16-base step time", q / b, null);
}
