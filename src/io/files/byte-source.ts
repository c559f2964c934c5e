/** Random access to one file's bytes: a file opened on disk, or bytes already in memory. */
export interface ByteSource {
  readonly size: number;
  /** Which file this is (device, inode, change time), or null for bytes in memory. */
  readonly identity: string | null;
  read(offset: number, length: number): Uint8Array;
  /** Fills `target` with the bytes at `offset`. */
  readInto(offset: number, target: Uint8Array): void;
  close(): void;
}

/** Bytes in memory as a ByteSource; reads are views, not copies. */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    identity: null,
    read: (offset, length) => bytes.subarray(offset, offset + length),
    readInto: (offset, target) => target.set(bytes.subarray(offset, offset + target.byteLength)),
    close() {},
  };
}

/** Chunks joined into one array, copied once. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
