import { cpuCores, readCpuInfo } from "./cpu.js";
import { nativeInfo } from "./native/index.js";
import { availableBackends, getBackend } from "./registry.js";
import { wasmVariant } from "./wasm/index.js";
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
  const backend = getBackend().name;
  return {
    backend,
    available: availableBackends(),
    threads: backend === "native" && native !== null ? native.threads : threadCount(),
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
