import type { Backend, PackedWeight, Shape } from "../backend.js";
import { allocateFloats, DTYPE_CODE, served } from "../c-kernels/host.js";
import type { FloatDType, Storage } from "../dtype.js";
import { referenceBackend } from "../reference/index.js";
import { matmulGeometry } from "../reference/matmul-geometry.js";
import type { Addon } from "./addon.js";

/** Rows of x the few-row kernels take at most (csrc/native/gemv.c, linear4bit.c). */
const GEMV_MAX_ROWS = 8;

/**
 * Batched matmul on oneDNN: float32 on its sgemm, bfloat16 on matmul primitives with
 * float32 accumulation rounded once; float16, and bfloat16 on CPUs without AVX-512, are
 * widened to float32 in the addon.
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
    // bfloat16 x · Wᵀ for the few rows of a decoding step: W read as it is (csrc/native/gemv.c).
    const rows = !transA && transB && M >= 1 && M <= GEMV_MAX_ROWS && dtype === "bfloat16";
    for (let t = 0; t < count; t++) {
      const args = [
        A.subarray(ia[t] * M * K, (ia[t] + 1) * M * K),
        B.subarray(ib[t] * K * N, (ib[t] + 1) * K * N),
        out.subarray(t * M * N, (t + 1) * M * N),
      ] as const;
      if (rows) {
        addon.gemvRows(
          args[0] as Uint16Array,
          M,
          K,
          args[1] as Uint16Array,
          N,
          args[2] as Uint16Array,
        );
        continue;
      }
      addon.matmul(DTYPE_CODE[dtype], transA, transB, M, N, K, ...args);
    }
    return out;
  };
}

interface NativePacked extends PackedWeight {
  readonly handle: object;
}

/**
 * Frozen weights packed by oneDNN (float32 and bfloat16) for x · Wᵀ on matmul primitives:
 * in bfloat16, 1.35-1.4x the plain layout's speed for training-sized products and 2.7-2.9x
 * for the few rows of a decoding step on AMX (1.1-1.2x and 3-4x on AVX-512 without AMX),
 * where repacking W every call costs more than the product.
 */
export function makePacked(addon: Addon): Required<Pick<Backend, "packWeight" | "matmulPacked">> {
  // Without oneDNN's own bfloat16 matmul (CPUs without AVX-512) nothing is gained by packing.
  const bf16Native = addon.info().bf16Matmul;
  return {
    packWeight(w, n, k, dtype) {
      if (dtype !== "float32" && (dtype !== "bfloat16" || !bf16Native)) return null;
      const handle = addon.packWeight(DTYPE_CODE[dtype], n, k, w as Float32Array | Uint16Array);
      const packed: NativePacked = { n, k, dtype, handle };
      return packed;
    },
    matmulPacked(x, m, packed) {
      const { n, k, dtype, handle } = packed as NativePacked;
      const kernelDType = dtype as "float32" | "bfloat16";
      const out = allocateFloats(addon, kernelDType, m * n);
      addon.matmulPacked(
        DTYPE_CODE[kernelDType],
        m,
        n,
        k,
        x as Float32Array | Uint16Array,
        handle,
        out,
      );
      return out;
    },
  };
}

/** The 4-bit product for decoding steps (csrc/native/linear4bit.c), for k and blocksize in multiples of 32. */
export function makeLinear4bit(addon: Addon): Required<Pick<Backend, "linear4bitRows">> {
  return {
    linear4bitRows(x, m, k, packed, code, absmax, blocksize, n, dtype) {
      if (!served(dtype) || m < 1 || m > GEMV_MAX_ROWS || k % 32 !== 0 || blocksize % 32 !== 0)
        return null;
      const out = allocateFloats(addon, dtype, m * n);
      addon.linear4bitRows(
        DTYPE_CODE[dtype],
        x as Float32Array | Uint16Array,
        m,
        k,
        packed,
        code,
        absmax,
        blocksize,
        n,
        out,
      );
      return out;
    },
  };
}
