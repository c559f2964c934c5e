import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getBackend } from "../src/backend/registry.js";
import { writeFileAtomic } from "../src/io/atomic.js";
import { safetensorsLayout, type TensorSpec } from "../src/io/safetensors/writer.js";
import { AutoModelForCausalLM } from "../src/models/auto.js";
import type { DecoderForCausalLM } from "../src/models/decoder/model.js";
import { randint } from "../src/tensor/creation.js";
import { loraStep } from "./lora-step.js";
import { arg, median, resultLine, runPeer, seconds } from "./util.js";

/** Llama-3.2-1B's config.json, with the layer count as an option (16 in the real model). */
export function llama1bConfig(layers: number): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: layers,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    vocab_size: 128256,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: {
      rope_type: "llama3",
      factor: 32.0,
      low_freq_factor: 1.0,
      high_freq_factor: 4.0,
      original_max_position_embeddings: 8192,
    },
    tie_word_embeddings: true,
    hidden_act: "silu",
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 128000,
    eos_token_id: 128001,
    torch_dtype: "bfloat16",
  };
}

function tensorSpecs(layers: number): TensorSpec[] {
  const [h, i, q, kv] = [2048, 8192, 32 * 64, 8 * 64];
  const specs: TensorSpec[] = [
    { name: "model.embed_tokens.weight", dtype: "bfloat16", shape: [128256, h] },
    { name: "model.norm.weight", dtype: "bfloat16", shape: [h] },
  ];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const add = (name: string, shape: number[]) =>
      specs.push({ name: `${p}.${name}.weight`, dtype: "bfloat16", shape });
    add("input_layernorm", [h]);
    add("post_attention_layernorm", [h]);
    add("self_attn.q_proj", [q, h]);
    add("self_attn.k_proj", [kv, h]);
    add("self_attn.v_proj", [kv, h]);
    add("self_attn.o_proj", [h, q]);
    add("mlp.gate_proj", [i, h]);
    add("mlp.up_proj", [i, h]);
    add("mlp.down_proj", [h, i]);
  }
  return specs;
}

/**
 * bfloat16 bytes of one tensor: norms are ones, matrices uniform with standard deviation
 * 0.02 (as the initialiser's normal), from a xorshift stream, in pieces of 1M values.
 */
function* tensorBytes(spec: TensorSpec, state: { x: number }): Generator<Uint8Array> {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const piece = new Uint16Array(Math.min(n, 1 << 20));
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  const half = 0.02 * Math.sqrt(3);
  for (let done = 0; done < n; done += piece.length) {
    const len = Math.min(piece.length, n - done);
    if (spec.shape.length === 1) piece.fill(0x3f80);
    else {
      let x = state.x;
      for (let k = 0; k < len; k++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        f[0] = ((x >>> 0) / 4294967296 - 0.5) * 2 * half;
        piece[k] = bits[0] >>> 16;
      }
      state.x = x;
    }
    yield new Uint8Array(piece.buffer, 0, len * 2);
  }
}

/**
 * Writes the model directory once (config.json, model.safetensors in bfloat16, ~2.5 GB
 * for 16 layers) and reuses it while its config.json matches. The weights file is
 * written before config.json, each atomically, so an interrupted run leaves no directory
 * that looks complete.
 */
export function ensureCheckpoint(dir: string, layers: number): string {
  const config = `${JSON.stringify(llama1bConfig(layers), null, 2)}\n`;
  const configPath = join(dir, "config.json");
  if (existsSync(configPath) && readFileSync(configPath, "utf8") === config) return dir;
  mkdirSync(dir, { recursive: true });
  const { header, order } = safetensorsLayout(tensorSpecs(layers), { format: "pt" });
  const state = { x: 2463534242 };
  const t0 = Date.now();
  console.log(`writing a random Llama-3.2-1B-shaped checkpoint (${layers} layers) to ${dir}`);
  writeFileAtomic(
    join(dir, "model.safetensors"),
    (function* () {
      yield* header;
      for (const spec of order) yield* tensorBytes(spec, state);
    })(),
  );
  writeFileAtomic(configPath, [new TextEncoder().encode(config)]);
  const gb = statSync(join(dir, "model.safetensors")).size / 1e9;
  console.log(`  ${gb.toFixed(2)} GB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/** What one child process measures for one way of loading the model. */
interface Measured {
  loadSeconds: number;
  /** Peak resident bytes of the process once the model is loaded. */
  peakAfterLoad: number;
  decodeTokensPerSecond: number;
  stepSeconds: number;
  /** Peak resident bytes over load, decoding and the training steps. */
  peakOverall: number;
}

const MODES = ["bfloat16", "nf4"] as const;
type Mode = (typeof MODES)[number];

function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

function child(args: string[]): void {
  const mode = arg(args, "mode", "bfloat16") as Mode;
  const dir = arg(args, "dir", "");
  const runs = Number(arg(args, "runs", "3"));
  const decode = Number(arg(args, "decode", "16"));
  const seq = Number(arg(args, "seq", "512"));
  let model: DecoderForCausalLM | undefined;
  const loadSeconds = seconds(() => {
    model = AutoModelForCausalLM.fromPretrained(dir, {
      dtype: "bfloat16",
      quantization:
        mode === "nf4"
          ? { loadIn4bit: true, quantType: "nf4", doubleQuant: true, computeDtype: "bfloat16" }
          : undefined,
    }) as DecoderForCausalLM;
  });
  const m = model!;
  const peakAfterLoad = peakRss();
  const prompt = randint(0, m.config.vocabSize, [1, 16], { seed: 2 });
  m.generate(prompt, { maxNewTokens: 2, eosTokenId: null });
  const decodeTimes = Array.from({ length: runs }, () =>
    seconds(() => m.generate(prompt, { maxNewTokens: decode, eosTokenId: null })),
  );
  const step = loraStep(m, 1, seq);
  step();
  const stepTimes = Array.from({ length: runs }, () => seconds(step));
  const out: Measured = {
    loadSeconds,
    peakAfterLoad,
    decodeTokensPerSecond: decode / median(decodeTimes),
    stepSeconds: median(stepTimes),
    peakOverall: peakRss(),
  };
  console.log(JSON.stringify(out));
}

/** Runs one mode in a fresh process, so each peak memory figure is that mode's alone. */
function runChild(mode: Mode, rest: string[]): Measured {
  const script = fileURLToPath(new URL("./run.ts", import.meta.url));
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, script, "llama1b", "--child", "--mode", mode, ...rest],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 },
  );
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Measured;
}

/** Parameters of the model: the float32 size the memory target is a fraction of. */
function parameterCount(layers: number): number {
  return tensorSpecs(layers).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * A Llama-3.2-1B-shaped model (random weights; hidden 2048, 16 layers, 32/8 heads,
 * MLP 8192, vocab 128256, tied, rope llama3) loaded from a bfloat16 safetensors
 * directory in bfloat16 and as NF4 (double quant, bfloat16 compute), each in its own
 * process: load time, peak resident memory, decode tokens/s (batch 1, KV cache, 16-token
 * prompt) and a LoRA step (r=16 on q, k, v, o, batch 1 x 512). Peer: the same model in
 * plain PyTorch, bfloat16 only (bitsandbytes' CPU path cannot run on Debian's torch).
 * Options: --dir (/tmp/peft-bench/llama1b-<layers>), --layers N (16), --runs N (3),
 * --decode N (16), --seq T (512), --modes bfloat16,nf4, --no-peer.
 */
export function main(args: string[]): void {
  if (args.includes("--child")) {
    child(args);
    return;
  }
  const layers = Number(arg(args, "layers", "16"));
  const dir = ensureCheckpoint(arg(args, "dir", `/tmp/peft-bench/llama1b-${layers}`), layers);
  const runs = arg(args, "runs", "3");
  const decode = arg(args, "decode", "16");
  const seq = arg(args, "seq", "512");
  const modes = arg(args, "modes", MODES.join(",")).split(",") as Mode[];
  const common = ["--dir", dir, "--runs", runs, "--decode", decode, "--seq", seq];
  const ours = new Map(modes.map((mode) => [mode, runChild(mode, common)]));
  const peer = args.includes("--no-peer")
    ? null
    : runPeer<Measured & { blas: string }>("llama1b.py", common);
  const f32 = parameterCount(layers) * 4;
  const gb = (b: number) => (b / 1e9).toFixed(2);
  console.log(
    `Llama-3.2-1B shape (${layers} layers, ${(parameterCount(layers) / 1e9).toFixed(3)}B parameters, float32 ${gb(f32)} GB) on the ${getBackend().name} backend; medians of ${runs} runs; peer BLAS: ${peer?.blas ?? "-"}`,
  );
  console.log(
    "model            load (s)  peak after load (GB, x f32)  decode (tok/s)  LoRA step 1x" +
      `${seq} (s)  peak overall (GB, x f32)`,
  );
  const rows: [string, Measured | null][] = [
    ...[...ours].map(([mode, r]) => [`peft-ts ${mode}`, r] as [string, Measured]),
    ["torch bfloat16", peer],
  ];
  for (const [name, r] of rows) {
    if (r === null) continue;
    console.log(
      `${name.padEnd(16)} ${r.loadSeconds.toFixed(2).padStart(8)}  ${`${gb(r.peakAfterLoad)} (${(r.peakAfterLoad / f32).toFixed(3)})`.padStart(27)}  ${r.decodeTokensPerSecond.toFixed(2).padStart(14)}  ${r.stepSeconds.toFixed(2).padStart(18)}  ${`${gb(r.peakOverall)} (${(r.peakOverall / f32).toFixed(3)})`.padStart(24)}`,
    );
  }
  const bf16 = ours.get("bfloat16");
  if (bf16 !== undefined) {
    resultLine("llama1b-load", "seconds", bf16.loadSeconds, peer?.loadSeconds ?? null);
    resultLine(
      "llama1b-decode",
      "tokens/s",
      bf16.decodeTokensPerSecond,
      peer?.decodeTokensPerSecond ?? null,
    );
    resultLine("llama1b-step", "seconds", bf16.stepSeconds, peer?.stepSeconds ?? null);
    resultLine("llama1b-peak", "bytes", bf16.peakOverall, peer?.peakOverall ?? null);
  }
  const nf4 = ours.get("nf4");
  if (nf4 !== undefined)
    resultLine("llama1b-nf4-peak", "fraction of float32 bytes", nf4.peakOverall / f32, null);
}
