import type { Shape } from "../backend.js";
import { allocateFloats, DTYPE_CODE, served } from "../c-kernels/host.js";
import type { FloatDType, Storage } from "../dtype.js";
import { referenceBackend } from "../reference/index.js";
import { matmulGeometry } from "../reference/matmul-geometry.js";
import type { Addon } from "./addon.js";

/**
 * Batched matmul on oneDNN: float32 on its sgemm, bfloat16 on matmul primitives with
 * float32 accumulation rounded once; float16 is widened in the addon.
 */
export function makeMatmul(addon: Addon) {
  return function matmul(
    a: Storage,
    aShape: Shape,
    b: Storage,
    bShape: Shape,
    transA: boolean,
    transB: boolean,
    batch: Shape,
    dtype: FloatDType,
  ): Storage {
    if (!served(dtype)) {
      return referenceBackend.matmul(a, aShape, b, bShape, transA, transB, batch, dtype);
    }
    const {
      M,
      K,
      N,
      count,
      aIndex: ia,
      bIndex: ib,
    } = matmulGeometry(aShape, bShape, transA, transB, batch);
    const out = allocateFloats(addon, dtype, count * M * N);
    const A = a as Float32Array | Uint16Array;
    const B = b as Float32Array | Uint16Array;
    for (let t = 0; t < count; t++) {
      addon.matmul(
        DTYPE_CODE[dtype],
        transA,
        transB,
        M,
        N,
        K,
        A.subarray(ia[t] * M * K, (ia[t] + 1) * M * K),
        B.subarray(ib[t] * K * N, (ib[t] + 1) * K * N),
        out.subarray(t * M * N, (t + 1) * M * N),
      );
    }
    return out;
  };
}
