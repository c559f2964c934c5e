import type { Backend } from "../../backend/backend.js";
import type { DType, FloatDType } from "../../backend/dtype.js";
import { isFloat, promoteTypes, promoteWithScalar } from "../../backend/dtype.js";
import { writeNumbers } from "../../backend/reference/float.js";
import { getBackend } from "../../backend/registry.js";
import { DTypeError } from "../../errors.js";
import { Tensor } from "../tensor.js";

export function backend(): Backend {
  return getBackend();
}

export type TensorOrNumber = Tensor | number;

/** A 0-d tensor holding `value` as `dtype`. */
export function scalar(value: number, dtype: DType): Tensor {
  return new Tensor(writeNumbers([value], dtype), [], dtype);
}

/** The dtype two operands promote to; a JS number adapts to the tensor's kind. */
export function resultType(a: TensorOrNumber, b: TensorOrNumber): DType {
  if (a instanceof Tensor && b instanceof Tensor) return promoteTypes(a.dtype, b.dtype);
  if (a instanceof Tensor) return promoteWithScalar(a.dtype, b as number);
  if (b instanceof Tensor) return promoteWithScalar(b.dtype, a);
  return Number.isInteger(a) && Number.isInteger(b) ? "int64" : "float32";
}

/** Storage of `t` as `dtype`, converting without recording a graph edge (the engine casts grads back). */
export function storageAs(t: TensorOrNumber, dtype: DType) {
  if (!(t instanceof Tensor)) return writeNumbers([t], dtype);
  return t.dtype === dtype ? t.data : backend().cast(t.data, t.dtype, dtype);
}

export function shapeOf(t: TensorOrNumber): readonly number[] {
  return t instanceof Tensor ? t.shape : [];
}

/** Same values as `t` in `dtype`, sharing storage when nothing changes, with no graph edge. */
export function rawAs(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : new Tensor(backend().cast(t.data, t.dtype, dtype), t.shape, dtype);
}

export function requireFloat(op: string, t: Tensor, name = "input"): FloatDType {
  if (!isFloat(t.dtype)) {
    throw new DTypeError(
      op,
      `expected a floating ${name} (float32, float64, float16 or bfloat16), got ${t.dtype}`,
    );
  }
  return t.dtype;
}
