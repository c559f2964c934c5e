import { createRequire } from "node:module";
import type { FloatDType, Storage } from "../dtype.js";

/** Dtype codes of the addon's kernels (csrc/kernels/half.h). */
export const DTYPE_CODE = { float32: 0, bfloat16: 1, float16: 2 } as const;
export type NativeDType = keyof typeof DTYPE_CODE;
type Floats = Float32Array | Uint16Array;

/** The dtypes the native kernels serve; float64 stays on the reference kernels (exact checks). */
export const served = (dtype: FloatDType): dtype is NativeDType => dtype in DTYPE_CODE;

/** The entry points of csrc/native/addon.c; each checks its arguments' types and lengths. */
export interface Addon {
  matmul(
    dtype: number,
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Floats,
    b: Floats,
    c: Floats,
  ): void;
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
  prefault(array: Storage): void;
  info(): { isa: string; threads: number };
}

/** The compiled addon (build/Release/peft_native.node), or null when it was not built or cannot load. */
function loadAddon(): Addon | null {
  try {
    const require = createRequire(import.meta.url);
    return require("../../../build/Release/peft_native.node") as Addon;
  } catch {
    return null;
  }
}

export const addon = loadAddon();

/** Outputs at least this large (bytes) have their pages mapped in one call, not fault by fault. */
const PREFAULT_BYTES = 1 << 20;

/** Output storage of a native kernel, with its pages mapped when large. */
export function allocateOutput<T extends Storage>(out: T): T {
  if (out.byteLength >= PREFAULT_BYTES) addon?.prefault(out);
  return out;
}

/** Output storage of a native float kernel: float32 in a Float32Array, 16-bit dtypes as bits. */
export function allocateFloats(dtype: NativeDType, size: number): Floats {
  return allocateOutput(dtype === "float32" ? new Float32Array(size) : new Uint16Array(size));
}
