import type { DType, Storage } from "../backend/dtype.js";
import { allocate, isDType, isFloat, storageMatches } from "../backend/dtype.js";
import { bf16ArrayToF32, bf16ToF32, f16ArrayToF32, f16ToF32 } from "../backend/half.js";
import { writeNumbers } from "../backend/reference/float.js";
import { DTypeError, ShapeError, ValueError } from "../errors.js";
import { type GradFn, runBackward } from "./autograd.js";
import * as ops from "./ops/index.js";
import { checkShape, fmt, type Shape, sizeOf } from "./shape.js";

export type NestedArray = number | boolean | NestedArray[];
export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint32Array;

/**
 * An n-dimensional array with a dtype, contiguous row-major storage and optional
 * gradient tracking. Ops return new tensors; `reshape` and `detach` share storage.
 */
export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  /** Raw storage (16-bit floats as bit patterns). Shared by views; write with care. */
  data: Storage;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  gradFn: GradFn | null = null;
  /** Whether backward stores `.grad` on this non-leaf tensor too (see retainGrad). */
  retainsGrad = false;

  /** Wraps storage without copying; prefer `Tensor.from` or the creation functions. */
  constructor(data: Storage, shape: Shape, dtype: DType, requiresGrad = false) {
    checkShape("Tensor", shape);
    if (!storageMatches(data, dtype)) {
      throw new DTypeError("Tensor", `storage ${data.constructor.name} cannot hold dtype ${dtype}`);
    }
    if (data.length !== sizeOf(shape)) {
      throw new ShapeError(
        "Tensor",
        `shape ${fmt(shape)} needs ${sizeOf(shape)} elements but the storage has ${data.length}`,
      );
    }
    if (requiresGrad && !isFloat(dtype)) {
      throw new DTypeError("Tensor", `only floating tensors can require grad, got ${dtype}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.requiresGrad = requiresGrad;
  }

  /**
   * A tensor from a typed array or (nested) JS array. The values are copied. Without a
   * dtype: Float32Array -> float32, Float64Array -> float64, Int32Array -> int32,
   * BigInt64Array -> int64, Uint8Array -> uint8; nested arrays of integers -> int64, of
   * booleans -> bool, otherwise float32. A Uint16Array needs dtype float16 or bfloat16 and
   * is taken as bit patterns. Values are rounded to the dtype (round to nearest even).
   */
  static from(
    values: TypedArray | NestedArray | readonly number[],
    shape?: Shape,
    dtype?: DType,
  ): Tensor {
    if (dtype !== undefined && !isDType(dtype)) {
      throw new ValueError(`Tensor.from: unknown dtype ${JSON.stringify(dtype)}`);
    }
    let flat: ArrayLike<number> | BigInt64Array | Uint16Array;
    let inferred: Shape;
    let natural: DType;
    if (ArrayBuffer.isView(values)) {
      flat = values as ArrayLike<number>;
      inferred = [values.length];
      natural = naturalDType(values as TypedArray, dtype);
    } else {
      const nested = flattenNested(values as NestedArray);
      flat = nested.values;
      inferred = nested.shape;
      natural = nested.allBool ? "bool" : nested.allInt ? "int64" : "float32";
    }
    const target = dtype ?? natural;
    const finalShape = shape ?? inferred;
    checkShape("Tensor.from", finalShape);
    if (sizeOf(finalShape) !== flat.length) {
      throw new ShapeError(
        "Tensor.from",
        `shape ${fmt(finalShape)} needs ${sizeOf(finalShape)} elements but ${flat.length} were given`,
      );
    }
    return new Tensor(convert(flat, natural, target), finalShape, target);
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Widened float32 copy of the values (exact for 16-bit floats and small integers). */
  toFloat32Array(): Float32Array {
    const d = this.data;
    switch (this.dtype) {
      case "float32":
        return (d as Float32Array).slice();
      case "float16":
        return f16ArrayToF32(d as Uint16Array);
      case "bfloat16":
        return bf16ArrayToF32(d as Uint16Array);
      default:
        return Float32Array.from(this.toFlatNumbers());
    }
  }

  /** The values as JS numbers in row-major order (16-bit floats widened exactly). */
  toFlatNumbers(): number[] {
    const d = this.data;
    switch (this.dtype) {
      case "float16":
      case "bfloat16":
        return Array.from(this.toFloat32Array());
      case "int64":
        return Array.from(d as BigInt64Array, (v) => Number(v));
      default:
        return Array.from(d as ArrayLike<number>);
    }
  }

  /** Nested JS arrays (numbers; booleans for bool tensors; a bare value for 0-d tensors). */
  toArray(): NestedArray {
    const flat: (number | boolean)[] =
      this.dtype === "bool"
        ? Array.from(this.data as Uint8Array, (v) => v !== 0)
        : this.toFlatNumbers();
    if (this.shape.length === 0) return flat[0];
    const build = (axis: number, offset: number): NestedArray => {
      const n = this.shape[axis];
      const stride = sizeOf(this.shape.slice(axis + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) {
        out.push(
          axis === this.shape.length - 1 ? flat[offset + i] : build(axis + 1, offset + i * stride),
        );
      }
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number | boolean {
    if (this.size !== 1) {
      throw new ShapeError(
        "item",
        `expected a tensor with one element, got shape ${fmt(this.shape)}`,
      );
    }
    return this.dtype === "bool" ? this.data[0] !== 0 : this.toFlatNumbers()[0];
  }

  /** Same values, no gradient history; shares storage. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, this.dtype);
  }

  /** A copy with its own storage (gradients flow through). */
  clone(): Tensor {
    return ops.clone(this);
  }

  /** Sets requiresGrad on a leaf tensor and returns it. */
  requiresGrad_(flag = true): this {
    if (this.gradFn !== null) {
      throw new ValueError(
        "requiresGrad_: only leaf tensors can change requiresGrad; use detach() to make a leaf",
      );
    }
    if (flag && !isFloat(this.dtype)) {
      throw new DTypeError(
        "requiresGrad_",
        `only floating tensors can require grad, got ${this.dtype}`,
      );
    }
    this.requiresGrad = flag;
    return this;
  }

  /** Keep `.grad` on this non-leaf tensor during backward. */
  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  /** Accumulates d(this)/d(leaf) into every leaf's `.grad`. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    runBackward(this, gradient, options.retainGraph ?? false);
  }

  to(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }

  toString(): string {
    return `Tensor(shape=${fmt(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }

  // Method forms of the functional ops.
  add(other: Tensor | number): Tensor {
    return ops.add(this, other);
  }
  sub(other: Tensor | number): Tensor {
    return ops.sub(this, other);
  }
  mul(other: Tensor | number): Tensor {
    return ops.mul(this, other);
  }
  div(other: Tensor | number): Tensor {
    return ops.div(this, other);
  }
  pow(exponent: Tensor | number): Tensor {
    return ops.pow(this, exponent);
  }
  maximum(other: Tensor | number): Tensor {
    return ops.maximum(this, other);
  }
  minimum(other: Tensor | number): Tensor {
    return ops.minimum(this, other);
  }
  eq(other: Tensor | number): Tensor {
    return ops.eq(this, other);
  }
  ne(other: Tensor | number): Tensor {
    return ops.ne(this, other);
  }
  lt(other: Tensor | number): Tensor {
    return ops.lt(this, other);
  }
  le(other: Tensor | number): Tensor {
    return ops.le(this, other);
  }
  gt(other: Tensor | number): Tensor {
    return ops.gt(this, other);
  }
  ge(other: Tensor | number): Tensor {
    return ops.ge(this, other);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  abs(): Tensor {
    return ops.abs(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  gelu(options?: { approximate?: "none" | "tanh" }): Tensor {
    return ops.gelu(this, options);
  }
  silu(): Tensor {
    return ops.silu(this);
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return ops.maskedFill(this, mask, value);
  }
  sum(axis?: number | readonly number[], keepdim = false): Tensor {
    return ops.sum(this, axis, keepdim);
  }
  mean(axis?: number | readonly number[], keepdim = false): Tensor {
    return ops.mean(this, axis, keepdim);
  }
  max(axis?: number | readonly number[], keepdim = false): Tensor {
    return ops.max(this, axis, keepdim);
  }
  min(axis?: number | readonly number[], keepdim = false): Tensor {
    return ops.min(this, axis, keepdim);
  }
  softmax(axis = -1): Tensor {
    return ops.softmax(this, axis);
  }
  logSoftmax(axis = -1): Tensor {
    return ops.logSoftmax(this, axis);
  }
  matmul(other: Tensor): Tensor {
    return ops.matmul(this, other);
  }
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  flatten(startAxis = 0, endAxis = -1): Tensor {
    return ops.flatten(this, startAxis, endAxis);
  }
  squeeze(axis?: number): Tensor {
    return ops.squeeze(this, axis);
  }
  unsqueeze(axis: number): Tensor {
    return ops.unsqueeze(this, axis);
  }
  transpose(axis0 = -2, axis1 = -1): Tensor {
    return ops.transpose(this, axis0, axis1);
  }
  permute(perm: readonly number[]): Tensor {
    return ops.permute(this, perm);
  }
  slice(axis: number, start: number, end?: number, step = 1): Tensor {
    return ops.slice(this, axis, start, end, step);
  }
  gather(axis: number, index: Tensor): Tensor {
    return ops.gather(this, axis, index);
  }
}

function naturalDType(values: TypedArray, dtype: DType | undefined): DType {
  if (values instanceof Float32Array) return "float32";
  if (values instanceof Float64Array) return "float64";
  if (values instanceof Int32Array) return "int32";
  if (values instanceof BigInt64Array) return "int64";
  if (values instanceof Uint8Array) return dtype === "bool" ? "bool" : "uint8";
  if (values instanceof Uint16Array) {
    if (dtype === "float16" || dtype === "bfloat16") return dtype;
    throw new DTypeError(
      "Tensor.from",
      `a Uint16Array holds float16 or bfloat16 bit patterns: pass dtype "float16" or "bfloat16" (got ${dtype ?? "none"})`,
    );
  }
  // Int8/Int16/Uint32 arrays: numbers, converted to the requested dtype (int64 by default).
  return dtype ?? "int64";
}

function convert(
  values: ArrayLike<number> | BigInt64Array | Uint16Array,
  from: DType,
  to: DType,
): Storage {
  if (from === to && storageMatches(values as Storage, to)) return (values as Storage).slice();
  if (values instanceof BigInt64Array) {
    return writeNumbers(
      Array.from(values, (v) => Number(v)),
      to,
    );
  }
  if (from === "float16" || from === "bfloat16") {
    const widen = from === "float16" ? f16ToF32 : bf16ToF32;
    return writeNumbers(Array.from(values as Uint16Array, widen), to);
  }
  if (to === "int64" || to === "int32" || to === "uint8") {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isInteger(values[i])) {
        throw new ValueError(
          `Tensor.from: dtype ${to} needs integer values, found ${values[i]} at flat index ${i}`,
        );
      }
    }
  }
  return writeNumbers(values as ArrayLike<number>, to);
}

function flattenNested(values: NestedArray): {
  values: number[];
  shape: number[];
  allInt: boolean;
  allBool: boolean;
} {
  const shape: number[] = [];
  let probe: NestedArray = values;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
    if (probe === undefined) break;
  }
  const flat: number[] = [];
  let allInt = true;
  let allBool = true;
  const walk = (v: NestedArray, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof v === "boolean") {
        flat.push(v ? 1 : 0);
        return;
      }
      if (typeof v !== "number") {
        throw new ValueError(
          `Tensor.from: expected a number or boolean at ${path}, found ${describe(v)}`,
        );
      }
      allBool = false;
      if (!Number.isInteger(v)) allInt = false;
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new ShapeError(
        "Tensor.from",
        `ragged nested array: expected ${shape[depth]} elements at ${path}, found ${describe(v)}`,
      );
    }
    v.forEach((x, i) => walk(x, depth + 1, `${path}[${i}]`));
  };
  walk(values, 0, "values");
  if (flat.length === 0) allBool = false;
  return { values: flat, shape, allInt: allInt && flat.length > 0, allBool };
}

function describe(v: unknown): string {
  return Array.isArray(v) ? `an array of length ${v.length}` : `${typeof v} ${String(v)}`;
}

/** An uninitialised (zeroed) tensor. */
export function empty(shape: Shape, dtype: DType = "float32"): Tensor {
  checkShape("empty", shape);
  return new Tensor(allocate(dtype, sizeOf(shape)), shape, dtype);
}
