import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { FileFormatError, FileNotFoundError, PeftError } from "../../errors.js";
import { readBinaryFile } from "../read-file.js";
import type { ByteSource } from "./byte-source.js";
import type { ModelFiles } from "./model-files.js";

// One read call moves at most 2^31 - 1 bytes; tensors of 2 GiB and more are read in pieces.
const READ_CHUNK = 1 << 30;

/** A file on disk opened for random access; `what` names it when it is missing. */
export function fileSource(path: string, what = "file"): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new FileNotFoundError(path, `no such ${what}`);
    throw new PeftError("E_IO", `${path}: cannot open (${code ?? (e as Error).message})`);
  }
  const stat = fstatSync(fd, { bigint: true });
  const readInto = (offset: number, out: Uint8Array) => {
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(fd, out, done, Math.min(READ_CHUNK, out.byteLength - done), offset + done);
      if (n === 0)
        throw new FileFormatError(path, `unexpected end of file at byte ${offset + done}`);
      done += n;
    }
  };
  return {
    size: Number(stat.size),
    identity: `${stat.dev}:${stat.ino}:${stat.ctimeNs}`,
    read(offset, length) {
      const out = new Uint8Array(length);
      readInto(offset, out);
      return out;
    },
    readInto,
    close() {
      closeSync(fd);
    },
  };
}

/** Files given as they are, a directory's path as the directory's files. */
export function filesIn(dirOrFiles: string | ModelFiles): ModelFiles {
  return typeof dirOrFiles === "string" ? new DirectoryFiles(dirOrFiles) : dirOrFiles;
}

/** A model directory on disk. */
export class DirectoryFiles implements ModelFiles {
  constructor(readonly location: string) {}

  describe(name: string): string {
    return join(this.location, name);
  }

  has(name: string): boolean {
    return existsSync(join(this.location, name));
  }

  names(): string[] {
    return existsSync(this.location) ? readdirSync(this.location) : [];
  }

  read(name: string, what = "file"): Uint8Array {
    return readBinaryFile(join(this.location, name), what);
  }

  open(name: string, what = "file"): ByteSource {
    return fileSource(join(this.location, name), what);
  }
}
