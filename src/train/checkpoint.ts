import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, FileNotFoundError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readJsonFile } from "../io/read-file.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import { Tensor } from "../tensor/tensor.js";

export const STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";

export interface MomentState {
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/**
 * Writes a checkpoint directory atomically: everything goes into a temporary sibling,
 * which is renamed to `checkpoint-<step>` only when complete. A crash never leaves a
 * half-written checkpoint under the final name.
 */
export function writeCheckpoint(
  outputDir: string,
  step: number,
  write: (tmpDir: string) => void,
): string {
  mkdirSync(outputDir, { recursive: true });
  const final = join(outputDir, `checkpoint-${step}`);
  const tmp = join(outputDir, `.checkpoint-${step}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  write(tmp);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  return final;
}

/** The complete checkpoint with the highest step in outputDir, or null. */
export function latestCheckpoint(outputDir: string): string | null {
  if (!existsSync(outputDir)) return null;
  const steps = readdirSync(outputDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter(
      (m): m is RegExpExecArray => m !== null && existsSync(join(outputDir, m[0], STATE_FILE)),
    )
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  return steps.length === 0 ? null : join(outputDir, `checkpoint-${steps[0]}`);
}

/** `name` inside the directory `dir`. */
export function inDir(dir: string, name: string): string {
  return join(dir, name);
}

/** Creates `dir`, and its parents, where missing. */
export function makeDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

export function saveJson(path: string, value: unknown): void {
  writeFileAtomic(path, [new TextEncoder().encode(JSON.stringify(value, null, 2))]);
}

export function loadJson<T>(path: string): T {
  if (!existsSync(path)) throw new FileNotFoundError(path, "checkpoint file missing");
  return readJsonFile(path) as T;
}

/** Optimizer moments as float32 tensors (`<group>.<index>.exp_avg` / `.exp_avg_sq`) plus their steps. */
export function saveMoments(path: string, groups: MomentState[][]): number[][] {
  const tensors = new Map<string, Tensor>();
  groups.forEach((g, gi) =>
    g.forEach((s, i) => {
      tensors.set(`${gi}.${i}.exp_avg`, new Tensor(s.expAvg, [s.expAvg.length], "float32"));
      tensors.set(`${gi}.${i}.exp_avg_sq`, new Tensor(s.expAvgSq, [s.expAvgSq.length], "float32"));
    }),
  );
  saveSafetensors(path, tensors);
  return groups.map((g) => g.map((s) => s.step));
}

export function loadMoments(path: string, steps: number[][]): MomentState[][] {
  const file = SafetensorsFile.open(path);
  try {
    return steps.map((g, gi) =>
      g.map((step, i) => {
        const key = `${gi}.${i}`;
        if (!file.has(`${key}.exp_avg`))
          throw new FileFormatError(path, `no optimizer state for parameter ${key}`);
        return {
          step,
          expAvg: file.load(`${key}.exp_avg`).data as Float32Array,
          expAvgSq: file.load(`${key}.exp_avg_sq`).data as Float32Array,
        };
      }),
    );
  } finally {
    file.close();
  }
}
