import type { Backend, BinaryOp, Shape, UnaryOp } from "../backend.js";
import type { DType, FloatDType, Storage } from "../dtype.js";
import { referenceBackend } from "../reference/index.js";
import { broadcastStrides, sizeOf } from "../reference/strides.js";
import { allocateFloats, DTYPE_CODE, type KernelHost, served } from "./host.js";

/** Op codes of csrc/kernels/kernels.h (binary_op). */
const BINARY_CODE: Partial<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3 };
type Floats = Float32Array | Uint16Array;

/**
 * Casts between float32, bfloat16 and float16, add, sub, mul and div with broadcasting, SiLU
 * and the fused SiLU·mul, forward and backward, on the addon;
 * other ops and dtypes go to the reference kernels.
 */
export function makeElementwise(
  host: KernelHost,
): Pick<Backend, "binary" | "unary" | "unaryGrad" | "cast" | "siluMul" | "siluMulGrad"> {
  function cast(x: Storage, from: DType, to: DType): Storage {
    if (!isServed(from) || !isServed(to)) return referenceBackend.cast(x, from, to);
    const y = allocateFloats(host, to, x.length);
    host.cast(DTYPE_CODE[from], DTYPE_CODE[to], x as Floats, y);
    return y;
  }

  function binary(
    op: BinaryOp,
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): Storage {
    const code = BINARY_CODE[op];
    if (code === undefined || !isServed(dtype)) {
      return referenceBackend.binary(op, a, aShape, b, bShape, outShape, dtype);
    }
    const n = outShape.length;
    const geometry = new Float64Array(1 + 3 * n);
    geometry[0] = n;
    geometry.set(outShape, 1);
    geometry.set(broadcastStrides(aShape, outShape), 1 + n);
    geometry.set(broadcastStrides(bShape, outShape), 1 + 2 * n);
    const out = allocateFloats(host, dtype, sizeOf(outShape));
    host.binary(code, DTYPE_CODE[dtype], geometry, a as Floats, b as Floats, out);
    return out;
  }

  function unary(op: UnaryOp, x: Storage, dtype: FloatDType): Storage {
    if (op !== "silu" || !served(dtype)) return referenceBackend.unary(op, x, dtype);
    const y = allocateFloats(host, dtype, x.length);
    host.silu(DTYPE_CODE[dtype], x as Floats, y);
    return y;
  }

  function unaryGrad(op: UnaryOp, x: Storage, dy: Storage, dtype: FloatDType): Storage {
    if (op !== "silu" || !served(dtype)) return referenceBackend.unaryGrad(op, x, dy, dtype);
    const dx = allocateFloats(host, dtype, x.length);
    host.siluGrad(DTYPE_CODE[dtype], x as Floats, dy as Floats, dx);
    return dx;
  }

  function siluMul(gate: Storage, up: Storage, dtype: FloatDType): Storage {
    if (!served(dtype)) return referenceBackend.siluMul(gate, up, dtype);
    const y = allocateFloats(host, dtype, gate.length);
    host.siluMul(DTYPE_CODE[dtype], gate as Floats, up as Floats, y);
    return y;
  }

  function siluMulGrad(gate: Storage, up: Storage, dy: Storage, dtype: FloatDType) {
    if (!served(dtype)) return referenceBackend.siluMulGrad(gate, up, dy, dtype);
    const dgate = allocateFloats(host, dtype, gate.length);
    const dup = allocateFloats(host, dtype, gate.length);
    host.siluMulGrad(DTYPE_CODE[dtype], gate as Floats, up as Floats, dy as Floats, dgate, dup);
    return { dgate, dup };
  }

  return { binary, unary, unaryGrad, cast, siluMul, siluMulGrad };
}

const isServed = (dtype: DType): dtype is "float32" | "bfloat16" | "float16" =>
  dtype === "float32" || dtype === "bfloat16" || dtype === "float16";
