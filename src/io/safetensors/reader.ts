import { allocate, BYTES_PER_ELEMENT } from "../../backend/dtype.js";
import { FileFormatError, PeftError } from "../../errors.js";
import { Tensor } from "../../tensor/tensor.js";
import { type ByteSource, bufferSource } from "../files/byte-source.js";
import { fileSource } from "../files/directory.js";
import type { ModelFiles } from "../files/model-files.js";
import { FROM_FILE_DTYPE, type Header, MAX_HEADER_BYTES, type TensorEntry } from "./format.js";
import { parseHeader } from "./header.js";

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
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
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
    return SafetensorsFile.over(path, fileSource(path, "safetensors file"));
  }

  /** Opens the file `name` of a model's files (a directory, files in memory). */
  static openIn(files: ModelFiles, name: string): SafetensorsFile {
    return SafetensorsFile.over(files.describe(name), files.open(name, "safetensors file"));
  }

  private static over(path: string, source: ByteSource): SafetensorsFile {
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
