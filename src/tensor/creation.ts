import type { DType, FloatDType } from "../backend/dtype.js";
import { allocate, isDType, isFloat } from "../backend/dtype.js";
import { writeNumbers } from "../backend/reference/float.js";
import { DTypeError, ValueError } from "../errors.js";
import { generatorFor, type RandomOptions } from "./random.js";
import { checkShape, type Shape, sizeOf } from "./shape.js";
import { Tensor } from "./tensor.js";

export interface CreationOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

function make(
  op: string,
  values: ArrayLike<number>,
  shape: Shape,
  options: CreationOptions,
  fallback: DType,
): Tensor {
  const dtype = options.dtype ?? fallback;
  if (!isDType(dtype)) throw new ValueError(`${op}: unknown dtype ${JSON.stringify(dtype)}`);
  return new Tensor(writeNumbers(values, dtype), shape, dtype, options.requiresGrad ?? false);
}

export function zeros(shape: Shape, options: CreationOptions = {}): Tensor {
  checkShape("zeros", shape);
  const dtype = options.dtype ?? "float32";
  if (!isDType(dtype)) throw new ValueError(`zeros: unknown dtype ${JSON.stringify(dtype)}`);
  return new Tensor(allocate(dtype, sizeOf(shape)), shape, dtype, options.requiresGrad ?? false);
}

export function ones(shape: Shape, options: CreationOptions = {}): Tensor {
  return full(shape, 1, options);
}

export function full(shape: Shape, value: number, options: CreationOptions = {}): Tensor {
  checkShape("full", shape);
  return make("full", new Float64Array(sizeOf(shape)).fill(value), shape, options, "float32");
}

/** The n×n identity matrix (torch.eye). */
export function eye(n: number, options: CreationOptions = {}): Tensor {
  checkShape("eye", [n, n]);
  const values = new Float64Array(n * n);
  for (let i = 0; i < n; i++) values[i * n + i] = 1;
  return make("eye", values, [n, n], options, "float32");
}

export function zerosLike(t: Tensor, options: CreationOptions = {}): Tensor {
  return zeros(t.shape, { dtype: t.dtype, ...options });
}

export function onesLike(t: Tensor, options: CreationOptions = {}): Tensor {
  return ones(t.shape, { dtype: t.dtype, ...options });
}

export function fullLike(t: Tensor, value: number, options: CreationOptions = {}): Tensor {
  return full(t.shape, value, { dtype: t.dtype, ...options });
}

/**
 * start, start + step, ... below end (like torch.arange). With one argument it counts
 * from 0. Integer arguments give int64 unless a dtype is given, otherwise float32.
 */
export function arange(
  start: number,
  end?: number,
  step = 1,
  options: CreationOptions = {},
): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(start) || !Number.isFinite(end) || !Number.isFinite(step)) {
    throw new ValueError(
      `arange: expected finite start, end and a non-zero step, got (${start}, ${end}, ${step})`,
    );
  }
  const n = Math.max(0, Math.ceil((end - start) / step));
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  const allInt = [start, end, step].every(Number.isInteger);
  return make("arange", values, [n], options, allInt ? "int64" : "float32");
}

export interface RandomCreationOptions extends CreationOptions, RandomOptions {}

function floatDType(op: string, dtype: DType | undefined): FloatDType {
  const d = dtype ?? "float32";
  if (!isFloat(d)) throw new DTypeError(op, `expected a floating dtype, got ${d}`);
  return d;
}

/**
 * Uniform values in [low, high). float32 and float64 equal PyTorch's
 * `torch.empty(shape).uniform_(low, high, generator=g)` bit for bit for the same
 * generator state; 16-bit dtypes use as many random bits as their mantissa, as PyTorch does.
 */
export function uniform(
  shape: Shape,
  low = 0,
  high = 1,
  options: RandomCreationOptions = {},
): Tensor {
  checkShape("uniform", shape);
  if (!(low <= high))
    throw new ValueError(`uniform: expected low <= high, got low=${low}, high=${high}`);
  const dtype = floatDType("uniform", options.dtype);
  const g = generatorFor(options);
  const n = sizeOf(shape);
  const values = new Float64Array(n);
  if (dtype === "float64") {
    for (let i = 0; i < n; i++) values[i] = g.nextFloat53() * (high - low) + low;
  } else {
    const from = Math.fround(low);
    const to = Math.fround(high);
    const digits = dtype === "float32" ? 24 : dtype === "float16" ? 11 : 8;
    const mask = 2 ** digits - 1;
    const scale = 2 ** -digits;
    for (let i = 0; i < n; i++) {
      const x = (g.nextUint32() & mask) * scale;
      values[i] =
        dtype === "float32"
          ? x * (to - from) + from
          : Math.fround(Math.fround(x * Math.fround(to - from)) + from);
    }
  }
  return make("uniform", values, shape, { ...options, dtype }, dtype);
}

/** Uniform in [0, 1), like torch.rand. */
export function rand(shape: Shape, options: RandomCreationOptions = {}): Tensor {
  return uniform(shape, 0, 1, options);
}

/**
 * Standard normal values (times std, plus mean), following PyTorch's CPU algorithm:
 * tensors of 16 or more elements take Box-Muller over blocks of 16 uniforms, smaller
 * ones the double-precision pairwise Box-Muller. float64 matches torch.randn to
 * rounding, float32 to a few ulps (PyTorch vectorises sin/cos/log differently); 16-bit
 * dtypes are the float32 values rounded.
 */
export function randn(
  shape: Shape,
  options: RandomCreationOptions & { mean?: number; std?: number } = {},
): Tensor {
  checkShape("randn", shape);
  const dtype = floatDType("randn", options.dtype);
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!(std >= 0)) throw new ValueError(`randn: expected std >= 0, got ${std}`);
  const g = generatorFor(options);
  const n = sizeOf(shape);
  const values = new Float64Array(n);
  if (n >= 16) {
    const draw = dtype === "float64" ? () => g.nextFloat53() : () => g.nextFloat24();
    for (let i = 0; i < n; i++) values[i] = draw();
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16(values, i, mean, std);
    if (n % 16 !== 0) {
      const start = n - 16;
      for (let i = 0; i < 16; i++) values[start + i] = draw();
      boxMuller16(values, start, mean, std);
    }
  } else {
    for (let i = 0; i < n; i++) values[i] = g.nextNormal() * std + mean;
  }
  return make("randn", values, shape, { ...options, dtype }, dtype);
}

function boxMuller16(v: Float64Array, at: number, mean: number, std: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = 1 - v[at + j];
    const u2 = v[at + j + 8];
    const radius = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    v[at + j] = radius * Math.cos(theta) * std + mean;
    v[at + j + 8] = radius * Math.sin(theta) * std + mean;
  }
}

/** Integers uniform in [low, high), int64 by default, like torch.randint. */
export function randint(
  low: number,
  high: number,
  shape: Shape,
  options: RandomCreationOptions = {},
): Tensor {
  checkShape("randint", shape);
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
    throw new ValueError(`randint: expected integers low < high, got low=${low}, high=${high}`);
  }
  const range = high - low;
  if (range >= 2 ** 32)
    throw new ValueError(`randint: ranges of 2^32 or more are not supported, got ${range}`);
  const g = generatorFor(options);
  const n = sizeOf(shape);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = (g.nextUint32() % range) + low;
  return make("randint", values, shape, options, "int64");
}
