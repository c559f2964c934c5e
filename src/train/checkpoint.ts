import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { dirname, isAbsolute, join, relative } from "node:path";
import { ValueError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { type CheckpointFiles, STATE_FILE } from "./checkpoint-files.js";

/**
 * Writes a checkpoint's files into a directory atomically: everything goes into a
 * temporary sibling, which is renamed to `checkpoint-<step>` only when complete. A crash
 * never leaves a half-written checkpoint under the final name.
 */
export function writeCheckpoint(outputDir: string, step: number, files: CheckpointFiles): string {
  mkdirSync(outputDir, { recursive: true });
  const final = join(outputDir, `checkpoint-${step}`);
  const tmp = join(outputDir, `.checkpoint-${step}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    for (const [path, bytes] of Object.entries(files)) {
      const target = join(tmp, path);
      const inside = relative(tmp, target);
      if (inside === "" || inside.startsWith("..") || isAbsolute(inside))
        throw new ValueError(`checkpoint: the file "${path}" would be written outside ${final}`);
      mkdirSync(dirname(target), { recursive: true });
      writeFileAtomic(target, [bytes]);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
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
