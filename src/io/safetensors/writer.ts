import { ValueError } from "../../errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { writeFileAtomic } from "../atomic.js";
import { DTYPE_RANK, TO_FILE_DTYPE } from "./format.js";

export type NamedTensors = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

/**
 * Serialises tensors in the layout Python's safetensors writes: tensors ordered by dtype
 * alignment (largest first) then name, a compact JSON header with __metadata__ first,
 * padded with spaces to a multiple of 8 bytes. Returns the header and the tensors' own
 * bytes as separate chunks, so nothing is copied twice.
 */
export function serializeSafetensors(
  tensors: NamedTensors,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array[] {
  const list: [string, Tensor][] = [
    ...(tensors instanceof Map
      ? tensors.entries()
      : Object.entries(tensors as Record<string, Tensor>)),
  ];
  for (const [name] of list) {
    if (name === "__metadata__")
      throw new ValueError('safetensors: "__metadata__" cannot be a tensor name');
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new ValueError(`safetensors: metadata values must be strings, "${k}" is ${typeof v}`);
      }
    }
  }
  list.sort(([an, a], [bn, b]) => {
    const byDtype =
      DTYPE_RANK.get(TO_FILE_DTYPE[b.dtype])! - DTYPE_RANK.get(TO_FILE_DTYPE[a.dtype])!;
    return byDtype !== 0 ? byDtype : an < bn ? -1 : an > bn ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  const data: Uint8Array[] = [];
  for (const [name, t] of list) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = {
      dtype: TO_FILE_DTYPE[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.byteLength],
    };
    offset += bytes.byteLength;
    data.push(bytes);
  }
  let json = JSON.stringify(header);
  const length = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - (length % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  return [prefix, jsonBytes, ...data];
}

/** Writes a safetensors file atomically (temporary file, then rename). */
export function saveSafetensors(
  path: string,
  tensors: NamedTensors,
  metadata?: Readonly<Record<string, string>>,
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
