import type { Backend } from "./backend.js";
import { cpuCores, readCpuInfo } from "./cpu.js";
import { nativeInfo } from "./native/index.js";
import { availableBackends, getBackend } from "./registry.js";
import { type WasmBackend, wasmVariant } from "./wasm/index.js";
import type { GemmVariant } from "./wasm/module.js";
import { threadCount } from "./wasm/threads.js";

/** CPU features that decide which kernels can run fast. */
export interface CpuFeatures {
  avx2: boolean;
  avx512f: boolean;
  /** AVX512-BF16: bfloat16 dot products at twice the float32 rate. */
  avx512bf16: boolean;
  /** AVX512-FP16: native float16 arithmetic. */
  avx512fp16: boolean;
  /** AMX tiles for bfloat16: matrix units, many times the vector rate. */
  amxBf16: boolean;
}

export interface BackendInfo {
  backend: string;
  available: string[];
  /** Threads the active backend's kernels use. */
  threads: number;
  /**
   * Threads that take part in products now: `threads` on the native backend; on wasm the
   * calling thread and the matmul workers that have started, none of them before the
   * first product or `await startBackend()` (in a browser, workers start only while their
   * maker's thread is idle); 1 on the reference backend.
   */
  threadsJoined: number;
  cpu: { model: string; cores: number; features: CpuFeatures | null };
  /** The instruction set oneDNN dispatches to, when the native backend loaded. */
  onednnIsa: string | null;
  /**
   * Whether oneDNN multiplies bfloat16 itself (AVX-512 and later); false where bfloat16
   * products are widened to float32 (AVX2), null without the native backend.
   */
  onednnBf16: boolean | null;
  /** The WebAssembly build this engine runs, when it runs one. */
  wasm: GemmVariant | null;
}

/** What peft-ts runs on: the active backend, its threads, the CPU and its features. */
export function backendInfo(): BackendInfo {
  const native = nativeInfo();
  const cpu = readCpuInfo();
  const active = getBackend();
  const backend = active.name;
  const threads = backend === "native" && native !== null ? native.threads : threadCount();
  return {
    backend,
    available: availableBackends(),
    threads,
    threadsJoined: joinedThreads(active, threads),
    cpu: {
      model: cpu?.model ?? "unknown",
      cores: cpuCores(),
      features: cpu?.features ?? null,
    },
    onednnIsa: native?.isa ?? null,
    onednnBf16: native?.bf16Matmul ?? null,
    wasm: wasmVariant(),
  };
}

function joinedThreads(backend: Backend, threads: number): number {
  if (backend.name === "native") return threads;
  const wasm = backend as Partial<WasmBackend>;
  return typeof wasm.threadsJoined === "function" ? wasm.threadsJoined() : 1;
}

/**
 * Starts what the active backend needs before a long synchronous run, and resolves with
 * backendInfo() once it is up. In a browser worker, await it before training: the wasm
 * backend's matmul workers start only while the worker's thread returns to its event
 * loop, so without it a training loop's products run on one thread.
 */
export async function startBackend(): Promise<BackendInfo> {
  await getBackend().start?.();
  return backendInfo();
}
