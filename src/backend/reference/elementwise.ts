import type { ArithmeticOp, BinaryOp, Shape, UnaryOp } from "../backend.js";
import type { DType, FloatDType, Storage } from "../dtype.js";
import { isFloat } from "../dtype.js";
import { bf16ToF32, f16ToF32, toBf16, toF16 } from "../half.js";
import { floatsFor, readFloats, readNumbers, writeFloats, writeNumbers } from "./float.js";
import { gelu, geluGrad, geluTanh, geluTanhGrad, sigmoid } from "./math.js";
import { broadcastIndex, broadcastStrides, sizeOf } from "./strides.js";

const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  abs: Math.abs,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid,
  relu: (x) => Math.max(x, 0),
  gelu,
  gelu_tanh: geluTanh,
  silu: (x) => x * sigmoid(x),
  sin: Math.sin,
  cos: Math.cos,
};

/** f'(x) for each unary op. */
const DERIVATIVE: Record<UnaryOp, (x: number) => number> = {
  neg: () => -1,
  abs: (x) => Math.sign(x),
  exp: Math.exp,
  log: (x) => 1 / x,
  sqrt: (x) => 0.5 / Math.sqrt(x),
  rsqrt: (x) => -0.5 / (x * Math.sqrt(x)),
  tanh: (x) => {
    const t = Math.tanh(x);
    return 1 - t * t;
  },
  sigmoid: (x) => {
    const s = sigmoid(x);
    return s * (1 - s);
  },
  relu: (x) => (x > 0 ? 1 : 0),
  gelu: geluGrad,
  gelu_tanh: geluTanhGrad,
  silu: (x) => {
    const s = sigmoid(x);
    return s * (1 + x * (1 - s));
  },
  sin: Math.cos,
  cos: (x) => -Math.sin(x),
};

export function unary(op: UnaryOp, x: Storage, dtype: FloatDType): Storage {
  const f = UNARY[op];
  const src = readFloats(x, dtype);
  const out = floatsFor(dtype, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]);
  return writeFloats(out, dtype);
}

export function unaryGrad(op: UnaryOp, x: Storage, dy: Storage, dtype: FloatDType): Storage {
  const d = DERIVATIVE[op];
  const src = readFloats(x, dtype);
  const g = readFloats(dy, dtype);
  const out = floatsFor(dtype, src.length);
  for (let i = 0; i < src.length; i++) out[i] = g[i] * d(src[i]);
  return writeFloats(out, dtype);
}

/** silu(gate) * up as the two kernels compute it, each rounding to the dtype. */
export function siluMul(gate: Storage, up: Storage, dtype: FloatDType): Storage {
  const shape = [gate.length];
  return binary("mul", unary("silu", gate, dtype), shape, up, shape, shape, dtype);
}

export function siluMulGrad(
  gate: Storage,
  up: Storage,
  dy: Storage,
  dtype: FloatDType,
): { dgate: Storage; dup: Storage } {
  const shape = [gate.length];
  const dup = binary("mul", dy, shape, unary("silu", gate, dtype), shape, shape, dtype);
  const dsilu = binary("mul", dy, shape, up, shape, shape, dtype);
  return { dgate: unaryGrad("silu", gate, dsilu, dtype), dup };
}

const ARITHMETIC: Record<ArithmeticOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  // Math.max/min propagate NaN, as torch.maximum/minimum do.
  maximum: Math.max,
  minimum: Math.min,
};

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
};

export function binary(
  op: BinaryOp,
  a: Storage,
  aShape: Shape,
  b: Storage,
  bShape: Shape,
  outShape: Shape,
  dtype: DType,
): Storage {
  const A = readNumbers(a, dtype);
  const B = readNumbers(b, dtype);
  const size = sizeOf(outShape);
  const same = sizeOf(aShape) === size && sizeOf(bShape) === size;
  const [ia, ib] = same
    ? [null, null]
    : broadcastIndex(outShape, [
        broadcastStrides(aShape, outShape),
        broadcastStrides(bShape, outShape),
      ]);
  const cmp = COMPARE[op];
  if (cmp !== undefined) {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      out[i] = cmp(A[ia ? ia[i] : i], B[ib ? ib[i] : i]) ? 1 : 0;
    }
    return out;
  }
  const f = ARITHMETIC[op as ArithmeticOp];
  if (isFloat(dtype)) {
    const out = floatsFor(dtype, size);
    for (let i = 0; i < size; i++) out[i] = f(A[ia ? ia[i] : i], B[ib ? ib[i] : i]);
    return writeFloats(out, dtype);
  }
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) out[i] = f(A[ia ? ia[i] : i], B[ib ? ib[i] : i]);
  return writeNumbers(out, dtype);
}

export function where(
  cond: Uint8Array,
  condShape: Shape,
  a: Storage,
  aShape: Shape,
  b: Storage,
  bShape: Shape,
  outShape: Shape,
  _dtype: DType,
): Storage {
  const [ic, ia, ib] = broadcastIndex(outShape, [
    broadcastStrides(condShape, outShape),
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
  ]);
  const size = sizeOf(outShape);
  // Copies elements without converting them, so every dtype keeps its exact bits.
  const out = new (a.constructor as new (n: number) => Storage)(size);
  const o = out as unknown as { [i: number]: number | bigint };
  const av = a as unknown as ArrayLike<number | bigint>;
  const bv = b as unknown as ArrayLike<number | bigint>;
  for (let i = 0; i < size; i++) o[i] = cond[ic[i]] !== 0 ? av[ia[i]] : bv[ib[i]];
  return out;
}

export function cast(x: Storage, from: DType, to: DType): Storage {
  if (from === to) return x.slice();
  if (from === "bfloat16" && to === "float16") {
    const src = x as Uint16Array;
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = toF16(bf16ToF32(src[i]));
    return out;
  }
  if (from === "float16" && to === "bfloat16") {
    const src = x as Uint16Array;
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = toBf16(f16ToF32(src[i]));
    return out;
  }
  return writeNumbers(readNumbers(x, from), to);
}
