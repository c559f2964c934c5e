import {
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { OutputError } from "../errors.js";
import { processAlive } from "../io/process.js";

export const LOCK_NAME = ".peft-train.lock";
/** A checkpoint being written: `.checkpoint-<step>.<pid>.tmp` (see checkpoint.ts). */
const PARTIAL_CHECKPOINT = /^\.checkpoint-\d+\.(\d+)\.tmp$/;

/**
 * Takes the output directory for one training run: a second run into the same directory
 * would replace the first one's checkpoints and adapter and interleave its metrics. The
 * lock file holds the owner's pid; a lock left by a process that no longer exists is taken
 * over, and the checkpoints that process left half-written are removed. Returns the release;
 * taking a lock this process holds already succeeds and its release does nothing.
 */
export function lockOutputDir(dir: string): () => void {
  const path = join(dir, LOCK_NAME);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o644,
      );
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw lockError(path, e);
      const owner = ownerOf(path);
      // Held by this process already (a command around its Trainer): the outer holder releases.
      if (owner === process.pid) return () => {};
      if (owner !== null && processAlive(owner))
        throw new OutputError(
          dir,
          `another training run (pid ${owner}) is writing into this directory; wait for it or choose another output directory`,
        );
      // The owner is gone (killed): its lock and half-written checkpoints are stale.
      rmSync(path, { force: true });
    }
  }
  removePartialCheckpoints(dir);
  return () => {
    if (ownerOf(path) === process.pid) rmSync(path, { force: true });
  };
}

function ownerOf(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function lockError(path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ELOOP")
    return new OutputError(
      path,
      "is a symbolic link; peft-ts does not write through links in an output directory",
    );
  if (code === "EEXIST")
    return new OutputError(path, "another training run took this directory at the same moment");
  return e as Error;
}

function removePartialCheckpoints(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = PARTIAL_CHECKPOINT.exec(name);
    if (m !== null && !processAlive(Number(m[1])))
      rmSync(join(dir, name), { recursive: true, force: true });
  }
}
