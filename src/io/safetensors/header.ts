import { FileFormatError } from "../../errors.js";
import {
  DTYPE_BYTES,
  type Header,
  MAX_HEADER_BYTES,
  type SafetensorsDType,
  type TensorEntry,
} from "./format.js";

/**
 * Parses and validates a header, given the first bytes of the file (at least 8 + N) and
 * the file's total size. Every rule of the format is checked: a sane length, UTF-8
 * JSON object, known dtypes, integer shapes, offsets that tile the data section exactly
 * (no gap, no overlap, nothing past the end) and byte lengths equal to dtype x shape.
 */
export function parseHeader(file: string, head: Uint8Array, fileSize: number): Header {
  const fail = (msg: string): never => {
    throw new FileFormatError(file, `invalid safetensors file: ${msg}`);
  };
  if (fileSize < 8)
    fail(`expected at least 8 bytes for the header length, the file has ${fileSize}`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES))
    fail(`header length ${n64} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (8 + n > fileSize)
    fail(`header length ${n} runs past the end of the file (${fileSize} bytes)`);
  if (head.byteLength < 8 + n) fail(`expected ${8 + n} header bytes, got ${head.byteLength}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(head.subarray(8, 8 + n));
  } catch {
    return fail("the header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail("the header must be a JSON object");
  }
  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail("__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(value as object)) {
        if (typeof v !== "string") fail(`__metadata__["${k}"] must be a string, found ${typeof v}`);
        metadata[k] = v as string;
      }
      continue;
    }
    entries.push(parseEntry(name, value, fail));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataSize = fileSize - 8 - n;
  let cursor = 0;
  for (const e of entries) {
    if (e.begin !== cursor) {
      fail(
        e.begin < cursor
          ? `tensor "${e.name}" at bytes [${e.begin}, ${e.end}) overlaps the previous tensor, which ends at ${cursor}`
          : `gap in the data: tensor "${e.name}" starts at byte ${e.begin}, expected ${cursor}`,
      );
    }
    cursor = e.end;
  }
  if (cursor !== dataSize) {
    fail(
      cursor > dataSize
        ? `tensor data ends at byte ${cursor} but the data section has only ${dataSize} bytes (truncated file?)`
        : `the data section has ${dataSize} bytes but the tensors cover only ${cursor}`,
    );
  }
  return { metadata, entries, dataStart: 8 + n };
}

function parseEntry(name: string, value: unknown, fail: (msg: string) => never): TensorEntry {
  const where = `tensor "${name}"`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`${where} must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== "string" || !DTYPE_BYTES.has(dtype)) {
    fail(
      `${where} has unknown dtype ${JSON.stringify(dtype)}; expected one of ${[...DTYPE_BYTES.keys()].join(", ")}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(
      `${where} has an invalid shape ${JSON.stringify(shape)}; expected a list of non-negative integers`,
    );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    fail(
      `${where} has invalid data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end`,
    );
  }
  const [begin, end] = offsets as [number, number];
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const bytes = numel * DTYPE_BYTES.get(dtype as string)!;
  if (end - begin !== bytes) {
    fail(
      `${where} of dtype ${dtype} and shape [${(shape as number[]).join(", ")}] needs ${bytes} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end };
}
