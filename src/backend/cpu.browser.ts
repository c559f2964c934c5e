import type * as Node from "./cpu.js";

// Browsers tell the cores (navigator.hardwareConcurrency) and nothing about the CPU.

export const cpuCores: typeof Node.cpuCores = () =>
  (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ??
  1;

export const readCpuInfo: typeof Node.readCpuInfo = () => null;
