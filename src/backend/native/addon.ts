import { createRequire } from "node:module";
import type { Floats, KernelHost } from "../c-kernels/host.js";
import type { Storage } from "../dtype.js";

/** The entry points of csrc/native/addon.c: the C kernels and oneDNN's GEMM. */
export interface Addon extends KernelHost {
  matmul(
    dtype: number,
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Floats,
    b: Floats,
    c: Floats,
  ): void;
  /** An opaque handle to W [n, k] packed by oneDNN (freed when the handle is collected). */
  packWeight(dtype: number, n: number, k: number, w: Floats): object;
  matmulPacked(
    dtype: number,
    m: number,
    n: number,
    k: number,
    x: Floats,
    packed: object,
    y: Floats,
  ): void;
  gemvRows(x: Uint16Array, m: number, k: number, w: Uint16Array, n: number, y: Uint16Array): void;
  linear4bitRows(
    dtype: number,
    x: Floats,
    m: number,
    k: number,
    packed: Uint8Array,
    code: Float32Array,
    absmax: Float32Array,
    blocksize: number,
    n: number,
    y: Floats,
  ): void;
  /** bf16Matmul: oneDNN multiplies bfloat16 itself (AVX-512 on); else it is widened to float32. */
  info(): { isa: string; threads: number; bf16Matmul: boolean };
  prefault(array: Storage): void;
}

// Below this many bytes zeroing costs little, and V8's own allocation is quicker.
const UNZEROED_BYTES = 1 << 16;

/**
 * Memory for an output the kernel writes in full: large ones skip zeroing (Node's unsafe
 * allocation), which often costs as much as the kernel (a LoRA step on the SmolLM2-135M
 * shape: 2.7 -> 2.4 s in bfloat16).
 */
function allocateUninitialized(bytes: number): ArrayBuffer {
  return bytes < UNZEROED_BYTES ? new ArrayBuffer(bytes) : Buffer.allocUnsafeSlow(bytes).buffer;
}

/** The compiled addon (build/Release/peft_native.node), or null when it was not built or cannot load. */
function loadAddon(): Addon | null {
  try {
    const require = createRequire(import.meta.url);
    const native = require("../../../build/Release/peft_native.node") as Addon;
    return { ...native, allocateUninitialized };
  } catch {
    return null;
  }
}

export const addon = loadAddon();
