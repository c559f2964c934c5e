import {
  allocate,
  BYTES_PER_ELEMENT,
  type DType,
  type FloatDType,
  type Storage,
  type StorageOf,
} from "../dtype.js";

/**
 * The portable C kernels of csrc/kernels, as a backend reaches them: the native addon
 * calls them on the tensors' own buffers, the wasm module on copies in its memory. Each
 * takes its outputs as arguments, checks types and lengths, and throws on bad input.
 */

/** Dtype codes of the kernels (csrc/kernels/half.h). */
export const DTYPE_CODE = { float32: 0, bfloat16: 1, float16: 2 } as const;
export type KernelDType = keyof typeof DTYPE_CODE;
export type Floats = Float32Array | Uint16Array;

/** The dtypes the C kernels serve; float64 stays on the reference kernels (exact checks). */
export const served = (dtype: FloatDType): dtype is KernelDType => dtype in DTYPE_CODE;

export interface KernelHost {
  binary(
    op: number,
    dtype: number,
    geometry: Float64Array,
    a: Floats,
    b: Floats,
    out: Floats,
  ): void;
  cast(from: number, to: number, x: Floats, y: Floats): void;
  silu(dtype: number, x: Floats, y: Floats): void;
  siluGrad(dtype: number, x: Floats, dy: Floats, dx: Floats): void;
  siluMul(dtype: number, gate: Floats, up: Floats, y: Floats): void;
  siluMulGrad(
    dtype: number,
    gate: Floats,
    up: Floats,
    dy: Floats,
    dgate: Floats,
    dup: Floats,
  ): void;
  crossEntropy(
    dtype: number,
    logits: Floats,
    targets: Int32Array,
    rows: number,
    classes: number,
    ignoreIndex: number,
    loss: Float32Array,
    lse: Float32Array,
  ): void;
  crossEntropyGrad(
    dtype: number,
    logits: Floats,
    targets: Int32Array,
    lse: Float32Array,
    dloss: Float32Array,
    rows: number,
    classes: number,
    ignoreIndex: number,
    dlogits: Floats,
  ): void;
  dequantize4bit(
    dtype: number,
    packed: Uint8Array,
    code: Float32Array,
    absmax: Float32Array,
    blocksize: number,
    start: number,
    count: number,
    out: Floats,
  ): void;
  norm(
    rms: boolean,
    dtype: number,
    x: Floats,
    w: Floats | null,
    b: Floats | null,
    rows: number,
    n: number,
    eps: number,
    y: Floats,
    mean: Float32Array | null,
    rstd: Float32Array,
  ): void;
  normGrad(
    rms: boolean,
    dtype: number,
    x: Floats,
    w: Floats | null,
    mean: Float32Array | null,
    rstd: Float32Array,
    dy: Floats,
    rows: number,
    n: number,
    dx: Floats,
    dw: Float64Array | null,
    db: Float64Array | null,
  ): void;
  rope(
    dtype: number,
    x: Floats,
    cos: Floats,
    sin: Floats,
    batch: number,
    heads: number,
    seq: number,
    dim: number,
    cosBatch: number,
    inverse: boolean,
    y: Floats,
  ): void;
  stridedCopy(geometry: Float64Array, x: Storage, y: Storage): void;
  attention(
    dtype: number,
    q: Floats,
    k: Floats,
    v: Floats,
    geometry: Float64Array,
    mask: Uint8Array | Float32Array | null,
    out: Floats,
    lse: Float32Array,
  ): void;
  attentionGrad(
    dtype: number,
    q: Floats,
    k: Floats,
    v: Floats,
    geometry: Float64Array,
    mask: Uint8Array | Float32Array | null,
    out: Floats,
    dout: Floats,
    dq: Floats,
    dk: Floats,
    dv: Floats,
  ): void;
  /** Maps the pages of a large new output in one call; optional (see csrc/native/addon.c). */
  prefault?(array: Storage): void;
  /**
   * Optional: memory for an output of `bytes` that the kernel writes in full (every kernel
   * here does), so it need not be zeroed; a host skips zeroing where that pays.
   */
  allocateUninitialized?(bytes: number): ArrayBuffer;
}

/** Outputs at least this large (bytes) have their pages mapped in one call, not fault by fault. */
const PREFAULT_BYTES = 1 << 20;

/**
 * A new output array of `size` elements for a kernel that writes all of them, from the
 * host's allocator where it has one, its pages mapped up front when large and the host can.
 */
export function allocateOutput<D extends DType>(
  host: KernelHost,
  dtype: D,
  size: number,
): StorageOf[D] {
  const bytes = size * BYTES_PER_ELEMENT[dtype];
  const out =
    host.allocateUninitialized === undefined
      ? allocate(dtype, size)
      : allocate(dtype, size, host.allocateUninitialized(bytes));
  if (bytes >= PREFAULT_BYTES) host.prefault?.(out);
  return out;
}

/** A kernel's float output: float32 in a Float32Array, 16-bit dtypes as bits. */
export function allocateFloats(host: KernelHost, dtype: KernelDType, size: number): Floats {
  return allocateOutput(host, dtype, size);
}
