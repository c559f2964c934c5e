import type { AttentionArgs, Backend, PackedWeight, Shape } from "../src/backend/backend.js";
import type { FloatDType, Storage } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { randn } from "../src/tensor/creation.js";
import { fastestOf, wrapBackend } from "./util.js";

/** One matrix product: [batch] x (M x K) · (K x N), in a dtype, as the step asked for it. */
export interface Product {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  dtype: FloatDType;
  /** Through a packed weight (Backend.matmulPacked) rather than matmul. */
  packed: boolean;
}

export interface Floor {
  /** Floating-point operations of the step's products (2 per multiply-add). */
  flops: number;
  /** Seconds those products take when each shape runs alone, back to back. */
  seconds: number;
  /** The products' rate alone, flops / seconds. */
  rate: number;
}

/**
 * The step's arithmetic floor: every matrix product one call of `step` asks the backend
 * for (matmul, matmulPacked, and attention counted as the batched products a GEMM-based
 * attention runs: QKᵀ and PV forward, four products backward, half of each when causal),
 * timed alone at the same shapes and dtype, on the same backend, in the same run. A step
 * at the floor would spend all its time in products as fast as they run alone.
 */
export function gemmFloor(step: () => void): Floor {
  const counts = new Map<string, { p: Product; calls: number; fraction: number }>();
  const note = (p: Product, fraction = 1) => {
    const key = JSON.stringify(p) + fraction;
    const e = counts.get(key) ?? { p, calls: 0, fraction };
    e.calls++;
    counts.set(key, e);
  };
  const backend = getBackend();
  const watch: Record<string, (a: unknown[]) => void> = {
    matmul(a) {
      const [aShape, bShape] = [a[1] as Shape, a[3] as Shape];
      const [transA, transB, batch, dtype] = [a[4], a[5], a[6], a[7]] as [
        boolean,
        boolean,
        Shape,
        FloatDType,
      ];
      const [ra, rb] = [aShape.length, bShape.length];
      note({
        batch: batch.reduce((x, y) => x * y, 1),
        m: transA ? aShape[ra - 1] : aShape[ra - 2],
        k: transA ? aShape[ra - 2] : aShape[ra - 1],
        n: transB ? bShape[rb - 2] : bShape[rb - 1],
        transA,
        transB,
        dtype,
        packed: false,
      });
    },
    matmulPacked(a) {
      const [m, w] = [a[1], a[2]] as [number, PackedWeight];
      const p = { batch: 1, m, n: w.n, k: w.k, transA: false, transB: true };
      note({ ...p, dtype: w.dtype, packed: true });
    },
    attention(a) {
      for (const p of attentionProducts(a[0] as AttentionArgs, false)) note(p, causal(a[0]));
    },
    attentionGrad(a) {
      for (const p of attentionProducts(a[0] as AttentionArgs, true)) note(p, causal(a[0]));
    },
  };
  const restore = wrapBackend((name, a, call) => {
    watch[name](a);
    return call();
  }, Object.keys(watch));
  try {
    step();
  } finally {
    restore();
  }
  let flops = 0;
  let seconds = 0;
  for (const { p, calls, fraction } of counts.values()) {
    const needed = calls * fraction;
    flops += 2 * p.batch * p.m * p.n * p.k * needed;
    seconds += productSeconds(backend, p) * needed;
  }
  return { flops, seconds, rate: flops / seconds };
}

const causal = (a: unknown) => ((a as AttentionArgs).causal ? 0.5 : 1);

/**
 * The products of attention over [B, H, T, D], in the layouts of [B, H, T, D] operands:
 * forward S = QKᵀ, O = PV; backward dV = PᵀdO, dP = dO Vᵀ, dQ = dS K, dK = dSᵀ Q.
 */
function attentionProducts(a: AttentionArgs, backward: boolean): Product[] {
  const batch = a.batch * a.headsQ;
  const [tq, tk, d, dtype] = [a.seqQ, a.seqK, a.headDim, a.dtype];
  const p = (m: number, n: number, k: number, transA: boolean, transB: boolean): Product => ({
    batch,
    m,
    n,
    k,
    transA,
    transB,
    dtype,
    packed: false,
  });
  if (!backward) return [p(tq, tk, d, false, true), p(tq, d, tk, false, false)];
  return [
    p(tk, d, tq, true, false),
    p(tq, tk, d, false, true),
    p(tq, d, tk, false, false),
    p(tk, d, tq, true, false),
  ];
}

/**
 * Seconds of one product of this shape, layout and dtype on random data: the fastest of
 * five, since a floor is what the product can take (a median of three moved the whole
 * floor by 30-60% between runs on a 2-core Xeon, with the results' fresh memory).
 */
function productSeconds(backend: Backend, p: Product): number {
  const data = (shape: number[]) => randn(shape).to(p.dtype).data as Storage;
  if (p.packed) {
    const w = backend.packWeight!(data([p.n, p.k]), p.n, p.k, p.dtype)!;
    const x = data([p.m, p.k]);
    return fastestOf(() => backend.matmulPacked!(x, p.m, w), 5);
  }
  const lead = p.batch === 1 ? [] : [p.batch];
  const aShape = [...lead, ...(p.transA ? [p.k, p.m] : [p.m, p.k])];
  const bShape = [...lead, ...(p.transB ? [p.n, p.k] : [p.k, p.n])];
  const [a, b] = [data(aShape), data(bShape)];
  return fastestOf(
    () => backend.matmul(a, aShape, b, bShape, p.transA, p.transB, lead, p.dtype),
    5,
  );
}
