import { createRequire } from "node:module";
import type { AttentionArgs, Backend, Shape } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { f32ArrayToBf16 } from "../half.js";
import { referenceBackend } from "../reference/index.js";
import { matmulGeometry } from "../reference/matmul-geometry.js";
import { makeAttention } from "./attention.js";

interface Addon {
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array | Uint16Array,
    b: Float32Array | Uint16Array,
    c: Float32Array,
  ): void;
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

const addon = loadAddon();

/**
 * Batched matmul on oneDNN's sgemm for float32 and bfloat16 (bf16 widened exactly inside
 * the addon, float32 accumulation, rounded once); other dtypes go to the reference kernel.
 */
function matmul(
  a: Storage,
  aShape: Shape,
  b: Storage,
  bShape: Shape,
  transA: boolean,
  transB: boolean,
  batch: Shape,
  dtype: FloatDType,
): Storage {
  if (addon === null || (dtype !== "float32" && dtype !== "bfloat16")) {
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
  const out = new Float32Array(count * M * N);
  const A = a as Float32Array | Uint16Array;
  const B = b as Float32Array | Uint16Array;
  for (let t = 0; t < count; t++) {
    addon.gemm(
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
  return dtype === "float32" ? out : f32ArrayToBf16(out);
}

/** The native backend when the addon loaded: the reference kernels with a oneDNN GEMM. */
export const nativeBackend: Backend | null = addon === null ? null : withAttention(addon);

function withAttention(a: Addon): Backend {
  const fast = makeAttention((ta, tb, m, n, k, x, y, z) => a.gemm(ta, tb, m, n, k, x, y, z));
  const useFast = (args: AttentionArgs) => args.dtype === "float32" || args.dtype === "bfloat16";
  return {
    ...referenceBackend,
    name: "native",
    matmul,
    attention: (args) => (useFast(args) ? fast.attention(args) : referenceBackend.attention(args)),
    attentionGrad: (args, res, dout) =>
      useFast(args)
        ? fast.attentionGrad(args, res, dout)
        : referenceBackend.attentionGrad(args, res, dout),
  };
}
