/**
 * Dtypes and their storage. 16-bit floats are kept as raw bit patterns in a Uint16Array,
 * so a bfloat16 tensor really takes two bytes per element.
 */
export type FloatDType = "float32" | "float64" | "float16" | "bfloat16";
export type IntDType = "int32" | "int64" | "uint8";
export type DType = FloatDType | IntDType | "bool";

export const DTYPES: readonly DType[] = [
  "float32",
  "float64",
  "float16",
  "bfloat16",
  "int32",
  "int64",
  "uint8",
  "bool",
];

export type Storage =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array;

/** The storage type of each dtype. */
export interface StorageOf {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  bool: 1,
};

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && (DTYPES as readonly string[]).includes(x);
}

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === "float32" || dtype === "float64" || dtype === "float16" || dtype === "bfloat16";
}

export function isHalf(dtype: DType): dtype is "float16" | "bfloat16" {
  return dtype === "float16" || dtype === "bfloat16";
}

const STORAGE_TYPE = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
} as const;

/** New zeroed storage of `size` elements, or a view of the first `size` elements of `buffer`. */
export function allocate<D extends DType>(
  dtype: D,
  size: number,
  buffer?: ArrayBuffer,
): StorageOf[D];
export function allocate(dtype: DType, size: number, buffer?: ArrayBuffer): Storage {
  const Type = STORAGE_TYPE[dtype];
  if (buffer === undefined && budget !== null) {
    budget.used += size * Type.BYTES_PER_ELEMENT;
    if (budget.used > budget.limit) budget.exceeded(budget.used);
  }
  return buffer === undefined ? new Type(size) : new Type(buffer, 0, size);
}

let budget: { used: number; limit: number; exceeded: (bytes: number) => never } | null = null;

/**
 * Runs fn with the bytes it may allocate bounded: past `limit`, `exceeded` is called (and
 * must throw) before the allocation is made. Building a model from a config.json whose
 * sizes do not fit its checkpoint stops here, with a typed error, instead of exhausting
 * memory.
 */
export function withAllocationBudget<T>(
  limit: number,
  exceeded: (bytes: number) => never,
  fn: () => T,
): T {
  const saved = budget;
  budget = { used: 0, limit, exceeded };
  try {
    return fn();
  } finally {
    budget = saved;
  }
}

/** Whether `data` is the storage type that `dtype` uses. */
export function storageMatches(data: Storage, dtype: DType): boolean {
  switch (dtype) {
    case "float32":
      return data instanceof Float32Array;
    case "float64":
      return data instanceof Float64Array;
    case "float16":
    case "bfloat16":
      return data instanceof Uint16Array;
    case "int32":
      return data instanceof Int32Array;
    case "int64":
      return data instanceof BigInt64Array;
    case "uint8":
    case "bool":
      return data instanceof Uint8Array;
  }
}

// PyTorch's type-promotion lattice: bool < integers < floats; within floats, float16 and
// bfloat16 meet at float32, and anything meets float64 at float64.
const KIND_RANK: Readonly<Record<DType, number>> = {
  bool: 0,
  uint8: 1,
  int32: 2,
  int64: 3,
  float16: 10,
  bfloat16: 10,
  float32: 11,
  float64: 12,
};

/** The dtype two tensor operands promote to, as torch.promote_types does. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if ((a === "float16" && b === "bfloat16") || (a === "bfloat16" && b === "float16")) {
    return "float32";
  }
  // uint8 and a signed integer meet at the wider signed one (uint8 + int8 would be int16,
  // which peft-ts does not have; int32 covers uint8).
  return KIND_RANK[a] >= KIND_RANK[b] ? a : b;
}

/**
 * The dtype of `tensor op scalar`: a JS number never widens a tensor of the same kind
 * (bf16 * 2.5 stays bf16), but a non-integer number lifts an integer tensor to float32,
 * as a Python float does in PyTorch.
 */
export function promoteWithScalar(dtype: DType, scalar: number): DType {
  if (isFloat(dtype)) return dtype;
  if (!Number.isInteger(scalar)) return "float32";
  return dtype === "bool" ? "int64" : dtype;
}
