import { type WasmGlobal, type WasmModule, webAssembly } from "./api.js";
import { wasmBytes } from "./bytes.js";

/** What csrc/wasm/gemm.c exports. */
interface GemmExports {
  /** Per-instance C stack pointer: each thread's instance gets its own stack. */
  __stack_pointer: WasmGlobal;
  /** First byte after the module's static data and main stack. */
  __heap_base: WasmGlobal;
  peft_gemm_workspace(): number;
  peft_job_words(): number;
  /** Claims and computes chunks of the job until none is left; returns how many it computed. */
  peft_run(job: number, work: number): number;
}

/**
 * What csrc/wasm/kernels.c exports: the portable kernels on addresses in the module's
 * memory (see src/backend/c-kernels/host.ts for the arguments). Those returning a number
 * return 0, or -1 for a malformed geometry or a target out of range.
 */
interface KernelExports {
  peft_binary(op: number, dt: number, g: number, a: number, b: number, out: number): number;
  peft_cast(from: number, to: number, x: number, y: number, n: number): void;
  peft_silu(dt: number, x: number, y: number, n: number): void;
  peft_silu_grad(dt: number, x: number, dy: number, dx: number, n: number): void;
  peft_silu_mul(dt: number, gate: number, up: number, y: number, n: number): void;
  peft_silu_mul_grad(
    dt: number,
    gate: number,
    up: number,
    dy: number,
    dgate: number,
    dup: number,
    n: number,
  ): void;
  peft_cross_entropy(
    dt: number,
    logits: number,
    targets: number,
    rows: number,
    classes: number,
    ignore: number,
    loss: number,
    lse: number,
  ): number;
  peft_cross_entropy_grad(
    dt: number,
    logits: number,
    targets: number,
    lse: number,
    dloss: number,
    rows: number,
    classes: number,
    ignore: number,
    dlogits: number,
  ): number;
  peft_dequantize_4bit(
    dt: number,
    packed: number,
    code: number,
    absmax: number,
    blocksize: number,
    start: number,
    count: number,
    out: number,
  ): void;
  peft_norm(
    rms: number,
    dt: number,
    x: number,
    w: number,
    b: number,
    rows: number,
    n: number,
    eps: number,
    y: number,
    mean: number,
    rstd: number,
  ): void;
  peft_norm_grad_workspace(rows: number, n: number): number;
  peft_norm_grad(
    rms: number,
    dt: number,
    x: number,
    w: number,
    mean: number,
    rstd: number,
    dy: number,
    rows: number,
    n: number,
    dx: number,
    dw: number,
    db: number,
    workspace: number,
  ): void;
  peft_rope(
    dt: number,
    x: number,
    cos: number,
    sin: number,
    batch: number,
    heads: number,
    seq: number,
    dim: number,
    cosBatch: number,
    inverse: number,
    y: number,
  ): void;
  peft_strided_copy(g: number, x: number, y: number): number;
  peft_attention_workspace(seqQ: number, seqK: number, headDim: number, backward: number): number;
  peft_attention(
    dt: number,
    q: number,
    k: number,
    v: number,
    g: number,
    mask: number,
    out: number,
    lse: number,
    workspace: number,
  ): number;
  peft_attention_grad(
    dt: number,
    q: number,
    k: number,
    v: number,
    g: number,
    mask: number,
    out: number,
    dout: number,
    dq: number,
    dk: number,
    dv: number,
    workspace: number,
  ): number;
}

/** Everything the module exports. */
export type ModuleExports = GemmExports & KernelExports;

export type GemmVariant = "relaxed-simd" | "simd";

export interface GemmModule {
  variant: GemmVariant;
  module: WasmModule;
}

// The relaxed build differs only in using a fused multiply-add where the hardware has
// one: on CPUs whose adds share ports with their multiplies that can double the peak;
// on those with separate add pipes it is level with the plain build (measured on Zen 5).
// Engines without relaxed SIMD (Node 20 without --experimental-wasm-relaxed-simd) reject
// it, and then the plain SIMD build runs; PEFT_WASM_RELAXED=0 asks for the plain build.
const FILES: ReadonlyArray<[GemmVariant, string]> = [
  ["relaxed-simd", "kernels-relaxed.wasm"],
  ["simd", "kernels-simd.wasm"],
];

const relaxedAllowed = () => globalThis.process?.env?.PEFT_WASM_RELAXED !== "0";

let chosen: { variant: GemmVariant; bytes: Uint8Array } | null | undefined;

/**
 * The first build this engine validates (SIMD, threads and all), or null when none does
 * or the .wasm files are missing. Validation is cheap; compilation waits for compileGemm.
 */
export function pickGemmVariant(): { variant: GemmVariant; bytes: Uint8Array } | null {
  if (chosen === undefined) {
    chosen = null;
    const api = webAssembly;
    if (api !== undefined && typeof SharedArrayBuffer === "function") {
      for (const [variant, file] of FILES) {
        if (variant === "relaxed-simd" && !relaxedAllowed()) continue;
        const bytes = wasmBytes(file);
        if (bytes !== null && api.validate(bytes)) {
          chosen = { variant, bytes };
          break;
        }
      }
    }
  }
  return chosen;
}

let compiled: GemmModule | null = null;

/** The compiled module (once per process; workers receive it rather than compiling again). */
export function compileGemm(): GemmModule | null {
  if (compiled === null) {
    const picked = pickGemmVariant();
    if (picked === null) return null;
    compiled = { variant: picked.variant, module: new webAssembly!.Module(picked.bytes) };
  }
  return compiled;
}
