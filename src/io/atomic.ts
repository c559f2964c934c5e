import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { OutputError } from "../errors.js";

/**
 * Writes a file so that readers see either the old content or the complete new one:
 * the bytes go to a temporary file in the same directory, are flushed to disk, and the
 * temporary file is renamed over the target. A crash leaves the old file untouched.
 * `chunks` may be a generator, so a large file is written without being held whole.
 */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, "w");
  try {
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.byteLength) done += writeSync(fd, chunk, done, chunk.byteLength - done);
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Appends text to a log file without following a symlink at its name: a link planted in
 * an output directory must not redirect writes to a file elsewhere.
 */
export function appendFileNoFollow(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
      0o644,
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP" || isSymlink(path))
      throw new OutputError(
        path,
        "is a symbolic link; peft-ts does not write through links in an output directory",
      );
    throw e;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
