import { BackendError } from "../../errors.js";
import type { Backend, Shape } from "../backend.js";
import { makeKernels } from "../c-kernels/index.js";
import type { FloatDType, Storage } from "../dtype.js";
import { referenceBackend } from "../reference/index.js";
import { matmulGeometry } from "../reference/matmul-geometry.js";
import { WasmGemm } from "./gemm.js";
import { wasmKernelHost } from "./kernel-host.js";
import { compileGemm, type GemmVariant, pickGemmVariant } from "./module.js";
import { threadCount } from "./threads.js";

export interface WasmBackend extends Backend {
  /** Chunks of products that worker threads have computed so far. */
  workerChunks(): number;
  /** Threads that take part in products now: the caller and the workers that have joined. */
  threadsJoined(): number;
  start(): Promise<number>;
}

export interface WasmBackendOptions {
  /** Threads per matmul (the caller's plus workers); default PEFT_THREADS, else min(2, cores). */
  threads?: number;
}

/**
 * A backend on the WebAssembly SIMD module built from csrc/wasm and csrc/kernels: its
 * matmul (float32, and bfloat16 widened exactly, accumulated in float32 and rounded once)
 * runs on worker threads too; the portable C kernels (elementwise, casts, loss, norms,
 * rotary embedding, 4-bit dequantisation, strided copies) run on the calling thread, as
 * on the native backend; every other kernel and dtype is the reference backend's. Null
 * when this engine cannot run the module. Nothing is compiled and no worker starts until
 * the first call.
 */
export function createWasmBackend(options: WasmBackendOptions = {}): WasmBackend | null {
  const { threads } = options;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new BackendError(`wasm backend: threads must be a positive integer, got ${threads}`);
  }
  if (pickGemmVariant() === null) return null;
  let engine: WasmGemm | null = null;
  const gemm = (): WasmGemm => {
    if (engine === null) {
      engine = new WasmGemm(compileGemm()!, threads ?? threadCount());
    }
    return engine;
  };

  function matmul(
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    transA: boolean,
    transB: boolean,
    batch: Shape,
    dtype: FloatDType,
  ): Storage {
    if (dtype !== "float32" && dtype !== "bfloat16") {
      return referenceBackend.matmul(a, aShape, b, bShape, transA, transB, batch, dtype);
    }
    const { M, K, N, aIndex, bIndex } = matmulGeometry(aShape, bShape, transA, transB, batch);
    return gemm().run({
      a: a as Float32Array | Uint16Array,
      b: b as Float32Array | Uint16Array,
      aIndex,
      bIndex,
      M,
      N,
      K,
      transA,
      transB,
      bf16: dtype === "bfloat16",
    });
  }

  return {
    ...referenceBackend,
    ...makeKernels(wasmKernelHost(gemm)),
    name: "wasm",
    matmul,
    workerChunks: () => engine?.chunksByWorkers ?? 0,
    threadsJoined: () => engine?.threadsJoined() ?? 1,
    start: () => gemm().start(),
  };
}

/** The wasm backend with the default thread count, or null when WebAssembly SIMD is unavailable. */
export const wasmBackend: WasmBackend | null = createWasmBackend();

/** Which build of the kernels this engine runs, or null when it runs none. */
export function wasmVariant(): GemmVariant | null {
  return pickGemmVariant()?.variant ?? null;
}
