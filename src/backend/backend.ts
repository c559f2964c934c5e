import type { DType, FloatDType, Storage } from "./dtype.js";

/**
 * The kernel interface every op calls through. Kernels take contiguous row-major storage
 * and plain shapes; ops in src/tensor validate shapes and dtypes before calling, so
 * kernels may assume well-formed input. Float kernels on 16-bit storage compute in
 * float32 and round their outputs once. A backend may implement a kernel for some dtypes
 * only and fall back to another backend for the rest (see registry.ts).
 */

export type Shape = readonly number[];

export type UnaryOp =
  | "neg"
  | "abs"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "tanh"
  | "sigmoid"
  | "relu"
  | "gelu" // erf form
  | "gelu_tanh"
  | "silu"
  | "sin"
  | "cos";

export type ArithmeticOp = "add" | "sub" | "mul" | "div" | "pow" | "maximum" | "minimum";
export type CompareOp = "eq" | "ne" | "lt" | "le" | "gt" | "ge";
export type BinaryOp = ArithmeticOp | CompareOp;

export type ReduceOp = "sum" | "mean" | "max" | "min";

/** Per-row statistics: float32, or float64 when the tensors are float64 (exact gradient checks). */
export type Stats = Float32Array | Float64Array;

export interface NormResult {
  y: Storage;
  /** Per-row statistics kept for the backward pass. */
  mean: Stats | null;
  rstd: Stats;
}

export interface NormGrads {
  dx: Storage;
  dw: Storage | null;
  db: Storage | null;
}

export interface AttentionArgs {
  /** [B, Hq, Tq, D] */
  q: Storage;
  /** [B, Hkv, Tk, D]; Hq is a multiple of Hkv (grouped-query attention). */
  k: Storage;
  v: Storage;
  batch: number;
  headsQ: number;
  headsKV: number;
  seqQ: number;
  seqK: number;
  headDim: number;
  scale: number;
  /**
   * Query i (0-based) may see key j only if j <= i + (seqK - seqQ): the queries are the
   * last seqQ positions, as with a KV cache.
   */
  causal: boolean;
  /**
   * Optional mask broadcast to [B, Hq, Tq, Tk], given with its strides over those four
   * axes (0 where broadcast). bool: 1 keeps, 0 hides. float: added to the scores.
   */
  mask: { data: Storage; dtype: DType; strides: readonly [number, number, number, number] } | null;
  dtype: FloatDType;
}

export interface AttentionResult {
  /** [B, Hq, Tq, D] */
  out: Storage;
  /** Log-sum-exp of each row of scores, [B, Hq, Tq]; -Infinity for a row that sees nothing. */
  lse: Stats;
}

export interface AttentionGrads {
  dq: Storage;
  dk: Storage;
  dv: Storage;
}

/** A frozen weight a backend holds in the layout its products prefer (see packWeight). */
export interface PackedWeight {
  /** The weight's shape [n, k] and dtype. */
  readonly n: number;
  readonly k: number;
  readonly dtype: FloatDType;
}

export interface Backend {
  readonly name: string;

  /**
   * Optional: brings up what the kernels need that starts asynchronously (the wasm
   * backend's matmul workers); resolves with the threads that take part in products.
   */
  start?(): Promise<number>;

  /** Converts storage between any two dtypes (float -> int truncates toward zero). */
  cast(x: Storage, from: DType, to: DType): Storage;

  /** y = f(x), same dtype (float dtypes only). */
  unary(op: UnaryOp, x: Storage, dtype: FloatDType): Storage;
  /** dx = dy * f'(x), same dtype. */
  unaryGrad(op: UnaryOp, x: Storage, dy: Storage, dtype: FloatDType): Storage;

  /**
   * The gated activation of Llama's MLP, y = silu(gate) * up, on equal shapes, rounding as
   * the two ops would: silu(gate) to the dtype, then the product.
   */
  siluMul(gate: Storage, up: Storage, dtype: FloatDType): Storage;
  /** Its backward, equal to the two ops' backward: dup = dy * silu(gate), dgate = silu'(gate) * (dy * up). */
  siluMulGrad(
    gate: Storage,
    up: Storage,
    dy: Storage,
    dtype: FloatDType,
  ): { dgate: Storage; dup: Storage };

  /**
   * Broadcasting a (op) b. Both inputs have dtype `dtype`. Arithmetic ops return `dtype`
   * (pow, div on integers are not asked for); compare ops return bool.
   */
  binary(
    op: BinaryOp,
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): Storage;

  /** out = cond ? a : b, broadcasting all three; a and b have dtype `dtype`. */
  where(
    cond: Uint8Array,
    condShape: Shape,
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): Storage;

  /**
   * Reduces over `axes` (sorted, distinct). The result has the input's shape with the
   * reduced axes set to 1. Sums of integers stay integers; mean is float only.
   */
  reduce(op: ReduceOp, x: Storage, shape: Shape, axes: readonly number[], dtype: DType): Storage;

  /**
   * Batched matmul: a is [...batchA, M, K] ([..., K, M] when transA), b is [...batchB, K, N]
   * ([..., N, K] when transB); the batch dims broadcast to `batch`. Output [...batch, M, N].
   */
  matmul(
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    transA: boolean,
    transB: boolean,
    batch: Shape,
    dtype: FloatDType,
  ): Storage;

  /** Softmax (or log-softmax) over the middle axis of an [outer, n, inner] view. */
  softmax(
    x: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
    dtype: FloatDType,
  ): Storage;
  /** Backward of softmax from its output y: dx = y * (dy - sum(dy * y)); log: dx = dy - exp(y) * sum(dy). */
  softmaxGrad(
    y: Storage,
    dy: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
    dtype: FloatDType,
  ): Storage;

  /**
   * Normalisation over the last axis of [rows, n]. LayerNorm subtracts the mean; RMSNorm
   * does not. Weight and bias (optional) are [n] in `dtype`. For RMSNorm the normalised
   * value is rounded to `dtype` before the weight multiplies it, as Hugging Face's
   * LlamaRMSNorm does.
   */
  norm(
    kind: "layer" | "rms",
    x: Storage,
    w: Storage | null,
    b: Storage | null,
    rows: number,
    n: number,
    eps: number,
    dtype: FloatDType,
  ): NormResult;
  normGrad(
    kind: "layer" | "rms",
    x: Storage,
    w: Storage | null,
    stats: NormResult,
    dy: Storage,
    rows: number,
    n: number,
    needW: boolean,
    needB: boolean,
    dtype: FloatDType,
  ): NormGrads;

  /**
   * Rotary embedding, Hugging Face half-rotation layout: y = x * cos + rotate_half(x) * sin
   * with rotate_half(x) = [-x2, x1]. x is [B, H, T, D]; cos and sin are [B or 1, T, D].
   * `inverse` computes the transpose (the backward pass): dx = dy * cos + rotate_half^T(dy * sin).
   */
  rope(
    x: Storage,
    cos: Storage,
    sin: Storage,
    batch: number,
    heads: number,
    seq: number,
    dim: number,
    cosBatch: number,
    inverse: boolean,
    dtype: FloatDType,
  ): Storage;

  attention(args: AttentionArgs): AttentionResult;
  attentionGrad(args: AttentionArgs, res: AttentionResult, dout: Storage): AttentionGrads;

  /**
   * Cross-entropy per row of [rows, classes] logits against int targets; rows whose target
   * equals ignoreIndex give loss 0. Returns the losses and each row's log-sum-exp.
   */
  crossEntropy(
    logits: Storage,
    targets: Int32Array,
    rows: number,
    classes: number,
    ignoreIndex: number,
    dtype: FloatDType,
  ): { loss: Stats; lse: Stats };
  /** dlogits = (softmax - onehot) * dloss[row]; zero for ignored rows. */
  crossEntropyGrad(
    logits: Storage,
    targets: Int32Array,
    lse: Stats,
    dloss: Stats,
    rows: number,
    classes: number,
    ignoreIndex: number,
    dtype: FloatDType,
  ): Storage;

  /** Permutes axes: out.shape[i] = shape[perm[i]]. Any dtype. */
  permute(x: Storage, shape: Shape, perm: readonly number[], dtype: DType): Storage;
  /** Strided slice with positive steps; any dtype. */
  slice(
    x: Storage,
    shape: Shape,
    starts: readonly number[],
    steps: readonly number[],
    outShape: Shape,
    dtype: DType,
  ): Storage;
  /** Writes `src` into a zero tensor of `shape` at the positions `slice` would read (slice's backward). */
  sliceScatter(
    src: Storage,
    shape: Shape,
    starts: readonly number[],
    steps: readonly number[],
    srcShape: Shape,
    dtype: DType,
  ): Storage;
  /** Joins tensors along `axis`; shapes agree elsewhere. Any dtype. */
  concat(parts: readonly Storage[], shapes: readonly Shape[], axis: number, dtype: DType): Storage;

  /** torch.gather: out[..i..] = x[..index[..i..].. on axis]; index has the output's shape. */
  gather(
    x: Storage,
    shape: Shape,
    axis: number,
    index: Int32Array,
    indexShape: Shape,
    dtype: DType,
  ): Storage;
  /** Backward of gather: a zero tensor of `shape` with src added at the gathered positions. */
  scatterAdd(
    src: Storage,
    indexShape: Shape,
    axis: number,
    index: Int32Array,
    shape: Shape,
    dtype: FloatDType,
  ): Storage;
  /** Rows of a [rows, dim] table: out[i] = table[ids[i]]. Any dtype. */
  embedding(table: Storage, dim: number, ids: Int32Array, dtype: DType): Storage;
  /** Backward of embedding: dtable[ids[i]] += dy[i]. */
  embeddingGrad(
    dy: Storage,
    dim: number,
    ids: Int32Array,
    rows: number,
    dtype: FloatDType,
  ): Storage;

  /**
   * Optional: a copy of W [n, k] (a linear layer's weight) in the layout this backend's
   * products prefer, so that x · Wᵀ does not repack W on every call; null for a dtype it
   * does not pack. Only backends whose products gain from it have it.
   */
  packWeight?(w: Storage, n: number, k: number, dtype: FloatDType): PackedWeight | null;
  /** Optional, with packWeight: y [m, n] = x [m, k] · Wᵀ for a packed W, in its dtype. */
  matmulPacked?(x: Storage, m: number, packed: PackedWeight): Storage;

  /**
   * Optional: y [m, n] = x [m, k] · Wᵀ for a 4-bit W [n, k] (the layout of
   * dequantize4bit), each weight rounded to `dtype` before the float32 sums, without
   * dequantising W into memory: for the few rows of a decoding step. Null where this
   * backend does not serve the dtype or the sizes.
   */
  linear4bitRows?(
    x: Storage,
    m: number,
    k: number,
    packed: Uint8Array,
    code: Float32Array,
    absmax: Float32Array,
    blocksize: number,
    n: number,
    dtype: FloatDType,
  ): Storage | null;

  /**
   * 4-bit blockwise dequantisation (bitsandbytes' layout: two codes per byte, the
   * even-indexed element in the high nibble) of the `count` elements from flat index
   * `start`: code[nibble] · absmax[index / blocksize] in float32, rounded to `dtype`.
   */
  dequantize4bit(
    packed: Uint8Array,
    code: Float32Array,
    absmax: Float32Array,
    blocksize: number,
    start: number,
    count: number,
    dtype: FloatDType,
  ): Storage;
}
