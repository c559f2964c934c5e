import type { DType, FloatDType, Storage } from "../dtype.js";
import { allocate } from "../dtype.js";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "../half.js";

/**
 * The reference kernels compute on plain float arrays: float64 for float64 tensors,
 * float32 for everything else (16-bit storage widens exactly and rounds once on the way
 * out, which is the "accumulate in float32, round the output" rule).
 */
export type Floats = Float32Array | Float64Array;

/** Reads float storage as a float array; float32/float64 storage is returned as is, not copied. */
export function readFloats(data: Storage, dtype: FloatDType): Floats {
  switch (dtype) {
    case "float32":
      return data as Float32Array;
    case "float64":
      return data as Float64Array;
    case "float16":
      return f16ArrayToF32(data as Uint16Array);
    case "bfloat16":
      return bf16ArrayToF32(data as Uint16Array);
  }
}

/** A scratch array to compute a result of `dtype` in. */
export function floatsFor(dtype: FloatDType, size: number): Floats {
  return dtype === "float64" ? new Float64Array(size) : new Float32Array(size);
}

/** Stores computed floats as `dtype`; the array itself is returned when no rounding is needed. */
export function writeFloats(values: Floats, dtype: FloatDType): Storage {
  switch (dtype) {
    case "float32":
      return values instanceof Float32Array ? values : Float32Array.from(values);
    case "float64":
      return values instanceof Float64Array ? values : Float64Array.from(values);
    case "float16":
      return f32ArrayToF16(asF32(values));
    case "bfloat16":
      return f32ArrayToBf16(asF32(values));
  }
}

function asF32(values: Floats): Float32Array {
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/** Reads any storage as JS numbers (int64 through Number, exact below 2^53). */
export function readNumbers(data: Storage, dtype: DType): Floats | Int32Array | Uint8Array {
  switch (dtype) {
    case "int64": {
      const src = data as BigInt64Array;
      const out = new Float64Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
      return out;
    }
    case "int32":
      return data as Int32Array;
    case "uint8":
    case "bool":
      return data as Uint8Array;
    default:
      return readFloats(data, dtype);
  }
}

/** Stores JS numbers as `dtype`: floats round, integers truncate toward zero, bool is x != 0. */
export function writeNumbers(values: ArrayLike<number>, dtype: DType): Storage {
  switch (dtype) {
    case "int64": {
      const out = new BigInt64Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        out[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
      }
      return out;
    }
    case "bool": {
      const out = new Uint8Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = values[i] !== 0 ? 1 : 0;
      return out;
    }
    case "int32":
    case "uint8": {
      const out = allocate(dtype, values.length);
      for (let i = 0; i < values.length; i++) out[i] = Math.trunc(values[i]);
      return out;
    }
    default: {
      if (values instanceof Float32Array || values instanceof Float64Array) {
        return writeFloats(values, dtype);
      }
      const tmp = floatsFor(dtype, values.length);
      for (let i = 0; i < values.length; i++) tmp[i] = values[i];
      return writeFloats(tmp, dtype);
    }
  }
}
