import { BYTES_PER_ELEMENT, type DType } from "../../backend/dtype.js";
import { ValueError } from "../../errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { writeFileAtomic } from "../atomic.js";
import { DTYPE_RANK, TO_FILE_DTYPE } from "./format.js";

export type NamedTensors = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

/** What the header needs to know of a tensor. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * The layout Python's safetensors writes: tensors ordered by dtype alignment (largest
 * first) then name, a compact JSON header with __metadata__ first, padded with spaces to
 * a multiple of 8 bytes. Returns the header's two chunks (length prefix, JSON) and the
 * specs in the order their bytes must follow, so a caller can stream tensors it never
 * holds all at once.
 */
export function safetensorsLayout<S extends TensorSpec>(
  specs: readonly S[],
  metadata?: Readonly<Record<string, string>>,
): { header: [Uint8Array, Uint8Array]; order: S[] } {
  for (const { name } of specs) {
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
  const order = [...specs].sort((a, b) => {
    const byDtype =
      DTYPE_RANK.get(TO_FILE_DTYPE[b.dtype])! - DTYPE_RANK.get(TO_FILE_DTYPE[a.dtype])!;
    return byDtype !== 0 ? byDtype : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, dtype, shape } of order) {
    const bytes = shape.reduce((n, d) => n * d, BYTES_PER_ELEMENT[dtype]);
    header[name] = {
      dtype: TO_FILE_DTYPE[dtype],
      shape: [...shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Spaces pad the header to a multiple of 8 bytes, so the tensors' data is aligned.
  const jsonBytes = new Uint8Array(json.byteLength + ((8 - (json.byteLength % 8)) % 8)).fill(0x20);
  jsonBytes.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  return { header: [prefix, jsonBytes], order };
}

/**
 * Serialises tensors in safetensors' layout (see safetensorsLayout). Returns the header
 * and the tensors' own bytes as separate chunks, so nothing is copied twice.
 */
export function serializeSafetensors(
  tensors: NamedTensors,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array[] {
  const entries =
    tensors instanceof Map
      ? [...tensors.entries()]
      : Object.entries(tensors as Record<string, Tensor>);
  const specs = entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, t }));
  const { header, order } = safetensorsLayout(specs, metadata);
  return [
    ...header,
    ...order.map(({ t }) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
}

/** Writes a safetensors file atomically (temporary file, then rename). */
export function saveSafetensors(
  path: string,
  tensors: NamedTensors,
  metadata?: Readonly<Record<string, string>>,
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
