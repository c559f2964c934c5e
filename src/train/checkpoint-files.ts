import { FileFormatError } from "../errors.js";
import { parseJsonText } from "../io/config.js";
import { concatBytes } from "../io/files/byte-source.js";
import type { FolderFiles, ModelFiles } from "../io/files/model-files.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { serializeSafetensors } from "../io/safetensors/writer.js";
import { Tensor } from "../tensor/tensor.js";

// A checkpoint's files as bytes, and reading them back from a directory's or memory's
// files: nothing here touches a file system (writing a checkpoint directory: checkpoint.ts).

/**
 * A checkpoint's files by their path inside its directory: trainer_state.json,
 * optimizer.safetensors, the adapter's two files (under `<name>/` for an adapter other
 * than "default", as savePretrained lays them out) and, for some methods,
 * tuner_state.safetensors. Trainer.checkpointFiles() makes them; Trainer.resumeFrom()
 * takes them, or the directory saveCheckpoint() wrote them into.
 */
export type CheckpointFiles = FolderFiles;

export const STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
/** The method's tensors of the run (see TrainingHooks.runState). */
export const TUNER_FILE = "tuner_state.safetensors";

export interface MomentState {
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

export function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, 2));
}

export function safetensorsBytes(tensors: Map<string, Tensor>): Uint8Array {
  return concatBytes(serializeSafetensors(tensors));
}

/** Optimizer moments as float32 tensors (`<group>.<index>.exp_avg` / `.exp_avg_sq`), and their steps. */
export function momentsBytes(groups: MomentState[][]): { bytes: Uint8Array; steps: number[][] } {
  const tensors = new Map<string, Tensor>();
  groups.forEach((g, gi) =>
    g.forEach((s, i) => {
      tensors.set(`${gi}.${i}.exp_avg`, new Tensor(s.expAvg, [s.expAvg.length], "float32"));
      tensors.set(`${gi}.${i}.exp_avg_sq`, new Tensor(s.expAvgSq, [s.expAvgSq.length], "float32"));
    }),
  );
  return { bytes: safetensorsBytes(tensors), steps: groups.map((g) => g.map((s) => s.step)) };
}

/** The moments momentsBytes wrote, copied out (training updates them in place). */
export function readMoments(files: ModelFiles, steps: number[][]): MomentState[][] {
  const file = SafetensorsFile.openIn(files, OPTIMIZER_FILE);
  try {
    return steps.map((g, gi) =>
      g.map((step, i) => {
        const key = `${gi}.${i}`;
        if (!file.has(`${key}.exp_avg`))
          throw new FileFormatError(file.path, `no optimizer state for parameter ${key}`);
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

export function readState(files: ModelFiles): unknown {
  return parseJsonText(
    files.describe(STATE_FILE),
    files.read(STATE_FILE, `${STATE_FILE} (not a checkpoint without it)`),
  );
}
