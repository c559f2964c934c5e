import { readFileSync } from "node:fs";
import { type WasmGlobal, type WasmModule, webAssembly } from "./api.js";

/** What csrc/wasm/gemm.c exports. */
export interface GemmExports {
  /** Per-instance C stack pointer: each thread's instance gets its own stack. */
  __stack_pointer: WasmGlobal;
  /** First byte after the module's static data and main stack. */
  __heap_base: WasmGlobal;
  peft_gemm_workspace(): number;
  peft_job_words(): number;
  /** Claims and computes chunks of the job until none is left; returns how many it computed. */
  peft_run(job: number, work: number): number;
}

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
  ["relaxed-simd", "gemm-relaxed.wasm"],
  ["simd", "gemm-simd.wasm"],
];

const relaxedAllowed = () => globalThis.process?.env?.PEFT_WASM_RELAXED !== "0";

function readBeside(name: string): Uint8Array | null {
  try {
    return readFileSync(new URL(`./${name}`, import.meta.url));
  } catch {
    return null;
  }
}

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
        const bytes = readBeside(file);
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
