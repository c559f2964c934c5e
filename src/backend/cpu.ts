import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { CpuFeatures } from "./info.js";

/** The cores this process may use. */
export function cpuCores(): number {
  return availableParallelism();
}

/** The model name and feature flags from /proc/cpuinfo (Linux); null elsewhere. */
export function readCpuInfo(): { model: string; features: CpuFeatures } | null {
  let text: string;
  try {
    text = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return null;
  }
  const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? "unknown";
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? "").split(/\s+/));
  return {
    model,
    features: {
      avx2: flags.has("avx2"),
      avx512f: flags.has("avx512f"),
      avx512bf16: flags.has("avx512_bf16"),
      avx512fp16: flags.has("avx512_fp16"),
      amxBf16: flags.has("amx_bf16"),
    },
  };
}
