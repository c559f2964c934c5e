import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { allocate, BYTES_PER_ELEMENT } from "../../backend/dtype.js";
import { FileFormatError, FileNotFoundError, PeftError } from "../../errors.js";
import { Tensor } from "../../tensor/tensor.js";
import { FROM_FILE_DTYPE, type Header, MAX_HEADER_BYTES, type TensorEntry } from "./format.js";
import { parseHeader } from "./header.js";

interface ByteSource {
  readonly size: number;
  /** Which file this is (device, inode, change time), or null for bytes in memory. */
  readonly identity: string | null;
  read(offset: number, length: number): Uint8Array;
  /** Fills `target` with the bytes at `offset`. */
  readInto(offset: number, target: Uint8Array): void;
  close(): void;
}

// One read call moves at most 2^31 - 1 bytes; tensors of 2 GiB and more are read in pieces.
const READ_CHUNK = 1 << 30;

function fileSource(path: string): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new FileNotFoundError(path, "no such safetensors file");
    throw new PeftError("E_IO", `${path}: cannot open (${code ?? (e as Error).message})`);
  }
  const stat = fstatSync(fd, { bigint: true });
  const size = Number(stat.size);
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
    size,
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

function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    identity: null,
    read: (offset, length) => bytes.subarray(offset, offset + length),
    readInto: (offset, target) => target.set(bytes.subarray(offset, offset + target.byteLength)),
    close() {},
  };
}

/**
 * A safetensors file opened for lazy reading: the header is parsed and validated up
 * front, each tensor's bytes are read only when it is loaded, so a model is never held
 * twice in memory.
 */
export class SafetensorsFile {
  private readonly header: Header;
  private readonly byName: Map<string, TensorEntry>;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly source: ByteSource,
  ) {
    if (endianness() !== "LE") {
      throw new PeftError(
        "E_PLATFORM",
        "safetensors data is little-endian; big-endian hosts are not supported",
      );
    }
    const headLength = Math.min(source.size, 8 + MAX_HEADER_BYTES);
    const first = source.read(0, Math.min(8, source.size));
    let head = first;
    if (source.size >= 8) {
      const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
      // Read only as much as the declared length (validated by parseHeader) needs.
      if (n <= BigInt(source.size - 8)) head = source.read(0, Math.min(headLength, 8 + Number(n)));
    }
    this.header = parseHeader(path, head, source.size);
    this.byName = new Map(this.header.entries.map((e) => [e.name, e]));
  }

  static open(path: string): SafetensorsFile {
    const source = fileSource(path);
    try {
      return new SafetensorsFile(path, source);
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /** Reads from bytes in memory; `name` is used in error messages. */
  static fromBytes(bytes: Uint8Array, name = "<bytes>"): SafetensorsFile {
    return new SafetensorsFile(name, bufferSource(bytes));
  }

  /**
   * Which file was opened (device, inode, change time), null for bytes in memory: equal
   * for two opens only when no rename or write replaced the file between them.
   */
  get identity(): string | null {
    return this.source.identity;
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  /** Tensor names, in the order their data appears in the file. */
  keys(): string[] {
    return this.header.entries.map((e) => e.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Name, file dtype, shape and byte range of a tensor, without reading it. */
  entry(name: string): Readonly<TensorEntry> {
    const e = this.byName.get(name);
    if (e === undefined) {
      throw new FileFormatError(
        this.path,
        `no tensor named "${name}" (the file has ${this.byName.size} tensors)`,
      );
    }
    return e;
  }

  /**
   * Reads one tensor in its stored dtype. With `scratch` large enough, the tensor's
   * storage is that buffer, for a caller that consumes one tensor after another (4-bit
   * quantisation while loading): fresh memory costs a page fault per 4 KiB, as much as
   * the read itself. The tensor is then only valid until the buffer's next use.
   */
  load(name: string, scratch?: ArrayBuffer): Tensor {
    if (this.closed) throw new PeftError("E_IO", `${this.path}: the file was closed`);
    const e = this.entry(name);
    const dtype = FROM_FILE_DTYPE[e.dtype];
    if (dtype === undefined) {
      throw new FileFormatError(
        this.path,
        `tensor "${name}" has dtype ${e.dtype}, which peft-ts does not load (supported: ${Object.keys(FROM_FILE_DTYPE).join(", ")})`,
      );
    }
    // Straight into the tensor's own (aligned) storage: a tensor costs its size once.
    const bytes = e.end - e.begin;
    const out = allocate(
      dtype,
      bytes / BYTES_PER_ELEMENT[dtype],
      scratch !== undefined && scratch.byteLength >= bytes ? scratch : undefined,
    );
    this.source.readInto(
      this.header.dataStart + e.begin,
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength),
    );
    return new Tensor(out, e.shape, dtype);
  }

  /** Reads every tensor. */
  loadAll(): Map<string, Tensor> {
    return new Map(this.keys().map((k) => [k, this.load(k)]));
  }

  close(): void {
    if (!this.closed) this.source.close();
    this.closed = true;
  }
}

/** Reads a whole safetensors file into memory. */
export function loadSafetensors(path: string): {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
} {
  const file = SafetensorsFile.open(path);
  try {
    return { tensors: file.loadAll(), metadata: { ...file.metadata } };
  } finally {
    file.close();
  }
}
