import type { DType } from "../../backend/dtype.js";

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * ({"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}}), then
 * the tensors' bytes, little-endian, offsets relative to the end of the header.
 */

/** Every dtype the format defines, with its byte size, in the format's own (alignment) order. */
export const SAFETENSORS_DTYPES = [
  ["BOOL", 1],
  ["U8", 1],
  ["I8", 1],
  ["F8_E5M2", 1],
  ["F8_E4M3", 1],
  ["I16", 2],
  ["U16", 2],
  ["F16", 2],
  ["BF16", 2],
  ["I32", 4],
  ["U32", 4],
  ["F32", 4],
  ["F64", 8],
  ["I64", 8],
  ["U64", 8],
] as const;

export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number][0];

export const DTYPE_BYTES: ReadonlyMap<string, number> = new Map(SAFETENSORS_DTYPES);
export const DTYPE_RANK: ReadonlyMap<string, number> = new Map(
  SAFETENSORS_DTYPES.map(([name], i) => [name, i]),
);

/** The peft-ts dtype each supported file dtype loads as. */
export const FROM_FILE_DTYPE: Readonly<Partial<Record<SafetensorsDType, DType>>> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  U8: "uint8",
  BOOL: "bool",
};

export const TO_FILE_DTYPE: Readonly<Record<DType, SafetensorsDType>> = {
  float64: "F64",
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  int64: "I64",
  int32: "I32",
  uint8: "U8",
  bool: "BOOL",
};

/** Python's safetensors refuses headers above 100 MB; so do we, before allocating anything. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

export interface Header {
  metadata: Record<string, string>;
  /** In data order. */
  entries: TensorEntry[];
  /** Bytes before the data section: 8 + header length. */
  dataStart: number;
}
