import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FloatDType } from "../src/backend/dtype.js";
import { availableBackends, getBackend } from "../src/backend/registry.js";
import { wasmVariant } from "../src/backend/wasm/index.js";
import { threadCount } from "../src/backend/wasm/threads.js";
import { randn } from "../src/tensor/creation.js";
import { linear, matmul } from "../src/tensor/ops/matmul.js";
import { setWeightPacking } from "../src/tensor/ops/packed-weights.js";
import { arg, resultLine, runPeer, timeIt } from "./util.js";

type Case = [number, number, number];
const DEFAULT_SHAPES = "2048x768x3072,512x768x768,1024x2048x2048";
const DEFAULT_DTYPES = "float32,bfloat16";
// The reference backend runs ~1 GFLOP/s: above this many flops a shape takes minutes.
const REFERENCE_MAX_FLOPS = 1e9;
// "wasm" is the plain SIMD build; "wasm-relaxed" the relaxed-SIMD (fused multiply-add)
// build, which Node 20 runs only with --experimental-wasm-relaxed-simd. "native-packed" is
// linear(x, W) on the native backend with the frozen W [N, K] packed once (the product a
// LoRA base layer runs), where "native" is matmul on plain row-major operands.
const ALL_BACKENDS = ["native", "native-packed", "wasm", "wasm-relaxed", "reference"];
const baseBackend = (b: string) => b.replace(/-(relaxed|packed)$/, "");

const key = ([M, K, N]: Case, dtype: string) => `${M}x${K}x${N}:${dtype}`;
const parseShapes = (s: string) => s.split(",").map((c) => c.split("x").map(Number) as Case);

/**
 * GFLOP/s of C[M,N] = A[M,K]·B[K,N] per backend, thread count and dtype, beside
 * torch.matmul on 2 threads. Each backend x thread count runs in its own process
 * (PEFT_BACKEND, PEFT_THREADS and OMP_NUM_THREADS set), so thread pools never meet.
 * Shapes are "MxKxN" arguments (default 2048x768x3072 512x768x768 1024x2048x2048);
 * options --backends native,native-packed,wasm,wasm-relaxed,reference (default: those available;
 * reference only on shapes up to 1 GFLOP), --threads 1,2, --dtypes, --runs N.
 * The JSON line reports the default backend at the default thread count, first shape, float32.
 */
export function main(args: string[]): void {
  if (args.includes("--child")) {
    child(args);
    return;
  }
  const positional = args.filter((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
  const shapes = parseShapes(positional.length > 0 ? positional.join(",") : DEFAULT_SHAPES);
  const dtypes = arg(args, "dtypes", DEFAULT_DTYPES).split(",");
  const threads = arg(args, "threads", "1,2").split(",").map(Number);
  const available = availableBackends();
  const backends = arg(args, "backends", ALL_BACKENDS.join(","))
    .split(",")
    .filter((b) => available.includes(baseBackend(b)));
  const runs = arg(args, "runs", "");

  const peer = runPeer<Record<string, number>>("matmul.py", [
    "--shapes",
    shapes.map((c) => c.join("x")).join(","),
    "--dtypes",
    dtypes.join(","),
  ]);
  const results = new Map<string, Record<string, number> | null>();
  for (const backend of backends) {
    for (const t of backend === "reference" ? [1] : threads) {
      const cases = shapes.filter(
        ([M, K, N]) => backend !== "reference" || 2 * M * K * N <= REFERENCE_MAX_FLOPS,
      );
      if (cases.length > 0)
        results.set(`${backend}/${t}`, runChild(backend, t, cases, dtypes, runs));
    }
  }

  console.log(
    `matmul GFLOP/s (median of runs; torch.matmul on 2 threads${peer === null ? ", not found" : ""})`,
  );
  console.log("shape            dtype     backend       threads      ours     torch     ratio");
  for (const shape of shapes) {
    for (const dtype of dtypes) {
      const theirs = peer?.[key(shape, dtype)] ?? null;
      for (const [run, figures] of results) {
        const ours = figures?.[key(shape, dtype)];
        if (ours === undefined) continue;
        const [backend, t] = run.split("/");
        console.log(
          `${shape.join("x").padEnd(16)} ${dtype.padEnd(9)} ${backend.padEnd(13)} ${t.padStart(7)} ${ours.toFixed(2).padStart(9)} ${(theirs?.toFixed(1) ?? "-").padStart(9)} ${(theirs ? (ours / theirs).toFixed(4) : "-").padStart(9)}`,
        );
      }
    }
  }

  const active = getBackend().name;
  const headline = results.get(`${active}/${active === "reference" ? 1 : threadCount()}`);
  const first = key(shapes[0], dtypes[0]);
  if (headline?.[first] !== undefined) {
    resultLine("matmul", "GFLOP/s", headline[first], peer?.[first] ?? null);
  }
}

/** Runs this bench in a child process for one backend and thread count; null if it fails. */
function runChild(
  backend: string,
  threads: number,
  cases: Case[],
  dtypes: string[],
  runs: string,
): Record<string, number> | null {
  const relaxed = backend === "wasm-relaxed";
  const packed = backend === "native-packed";
  const script = fileURLToPath(new URL("./run.ts", import.meta.url));
  const flags = relaxed ? ["--experimental-wasm-relaxed-simd"] : [];
  const childArgs = ["matmul", "--child", "--shapes", cases.map((c) => c.join("x")).join(",")];
  if (packed) childArgs.push("--packed");
  childArgs.push("--dtypes", dtypes.join(","), ...(runs ? ["--runs", runs] : []));
  const env = {
    ...process.env,
    PEFT_BACKEND: baseBackend(backend),
    PEFT_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    // The plain row measures the plain build even where the engine has relaxed SIMD.
    ...(backend === "wasm" ? { PEFT_WASM_RELAXED: "0" } : {}),
  };
  try {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, ...flags, script, ...childArgs],
      {
        env,
        encoding: "utf8",
        maxBuffer: 1 << 24,
      },
    );
    const lines = out.trim().split("\n");
    const { variant, figures } = JSON.parse(lines[lines.length - 1]) as {
      variant: string | null;
      figures: Record<string, number>;
    };
    if (relaxed && variant !== "relaxed-simd") {
      console.log(`${backend}: this engine does not run relaxed SIMD (ran ${variant}); skipped`);
      return null;
    }
    return figures;
  } catch (e) {
    console.log(
      `${backend} on ${threads} thread(s) failed: ${(e as Error).message.split("\n")[0]}`,
    );
    return null;
  }
}

/** The measuring side: the active backend on the given shapes; prints one JSON line. */
function child(args: string[]): void {
  const backend = getBackend().name;
  const runs = Number(arg(args, "runs", backend === "reference" ? "3" : "10"));
  const packed = args.includes("--packed");
  setWeightPacking(packed);
  const figures: Record<string, number> = {};
  for (const shape of parseShapes(arg(args, "shapes", DEFAULT_SHAPES))) {
    const [M, K, N] = shape;
    for (const dtype of arg(args, "dtypes", DEFAULT_DTYPES).split(",") as FloatDType[]) {
      const a = randn([M, K], { seed: 1, dtype });
      // A frozen linear weight is [N, K]; linear(a, w) computes a·wᵀ.
      const b = randn(packed ? [N, K] : [K, N], { seed: 2, dtype });
      const product = packed ? () => linear(a, b) : () => matmul(a, b);
      // Warm up for at least two seconds and ten products: WebAssembly starts on a
      // baseline compiler and swaps in optimised code compiled in the background, and
      // until garbage collection frees each result before the next product, every
      // result lands on fresh memory, whose first touch costs ~10 µs per 4 KiB page on
      // these virtual machines (a 25 MiB result: ~70 ms).
      const until = performance.now() + 2000;
      for (let i = 0; i < 10 || performance.now() < until; i++) product();
      const seconds = timeIt(product, runs, 0);
      figures[key(shape, dtype)] = (2 * M * K * N) / seconds / 1e9;
    }
  }
  console.log(JSON.stringify({ variant: backend === "wasm" ? wasmVariant() : null, figures }));
}
