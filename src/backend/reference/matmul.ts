import type { Shape } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { type Floats, readFloats, writeFloats } from "./float.js";
import { matmulGeometry } from "./matmul-geometry.js";

// Rows of B are streamed in blocks of this many so that a block stays in cache while
// every row of A passes over it.
const K_BLOCK = 128;

/** Copies a [rows, cols] matrix at `offset` into a new [cols, rows] one. */
function transposed(src: Floats, offset: number, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[offset + r * cols + c];
  }
  return out;
}

/**
 * C[M, N] += A[M, K] * B[K, N] for row-major operands, accumulating in float64.
 * The loop order i-k-j keeps the innermost loop contiguous in both B and C.
 */
function gemm(
  a: Floats,
  aOff: number,
  b: Floats,
  bOff: number,
  c: Float64Array,
  M: number,
  K: number,
  N: number,
): void {
  for (let k0 = 0; k0 < K; k0 += K_BLOCK) {
    const k1 = Math.min(k0 + K_BLOCK, K);
    for (let i = 0; i < M; i++) {
      const aRow = aOff + i * K;
      const cRow = i * N;
      for (let k = k0; k < k1; k++) {
        const av = a[aRow + k];
        const bRow = bOff + k * N;
        let j = 0;
        for (; j + 4 <= N; j += 4) {
          c[cRow + j] += av * b[bRow + j];
          c[cRow + j + 1] += av * b[bRow + j + 1];
          c[cRow + j + 2] += av * b[bRow + j + 2];
          c[cRow + j + 3] += av * b[bRow + j + 3];
        }
        for (; j < N; j++) c[cRow + j] += av * b[bRow + j];
      }
    }
  }
}

/**
 * C[M, N] += A[M, K] * B[N, K]ᵀ: both operands are read along contiguous rows (dot
 * products), four rows of B at a time so each A element is loaded once per four outputs.
 */
function gemmNT(
  a: Floats,
  aOff: number,
  b: Floats,
  bOff: number,
  c: Float64Array,
  M: number,
  K: number,
  N: number,
): void {
  for (let i = 0; i < M; i++) {
    const aRow = aOff + i * K;
    const cRow = i * N;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const b0 = bOff + j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const av = a[aRow + k];
        s0 += av * b[b0 + k];
        s1 += av * b[b1 + k];
        s2 += av * b[b2 + k];
        s3 += av * b[b3 + k];
      }
      c[cRow + j] += s0;
      c[cRow + j + 1] += s1;
      c[cRow + j + 2] += s2;
      c[cRow + j + 3] += s3;
    }
    for (; j < N; j++) {
      const bRow = bOff + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[aRow + k] * b[bRow + k];
      c[cRow + j] += s;
    }
  }
}

export function matmul(
  a: Storage,
  aShape: Shape,
  b: Storage,
  bShape: Shape,
  transA: boolean,
  transB: boolean,
  batch: Shape,
  dtype: FloatDType,
): Storage {
  const A = readFloats(a, dtype);
  const B = readFloats(b, dtype);
  const {
    M,
    K,
    N,
    count,
    aIndex: ia,
    bIndex: ib,
  } = matmulGeometry(aShape, bShape, transA, transB, batch);
  const out = new Float64Array(count * M * N);
  const c = new Float64Array(M * N);
  for (let t = 0; t < count; t++) {
    const aOff = ia[t] * M * K;
    const bOff = ib[t] * K * N;
    // A transposed is copied (it is an activation gradient, small next to the weights);
    // B transposed (a [out, in] weight) is read in place by the dot-product kernel.
    const left: Floats = transA ? transposed(A, aOff, K, M) : A;
    c.fill(0);
    if (transB) gemmNT(left, transA ? 0 : aOff, B, bOff, c, M, K, N);
    else gemm(left, transA ? 0 : aOff, B, bOff, c, M, K, N);
    out.set(c, t * M * N);
  }
  return writeFloats(dtype === "float64" ? out : Float32Array.from(out), dtype);
}
