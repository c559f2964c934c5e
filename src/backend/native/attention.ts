import type { AttentionArgs, AttentionGrads, AttentionResult } from "../backend.js";
import type { Storage } from "../dtype.js";
import { f32ArrayToBf16 } from "../half.js";
import { readFloats, readNumbers } from "../reference/float.js";

type Gemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
) => void;

/**
 * Attention with its two products per head (Q·Kᵀ and P·V) on the native GEMM; scaling,
 * masking and the softmax run over each [Tq, Tk] score matrix in TypeScript. Same
 * semantics as the reference kernel: hidden keys get -∞, a row that sees nothing outputs 0.
 */
export function makeAttention(gemm: Gemm) {
  /** Probabilities P [Tq, Tk] of head (b, h) into `p`; returns each row's log-sum-exp. */
  function probabilities(
    a: AttentionArgs,
    Q: Float32Array,
    K: Float32Array,
    M: ArrayLike<number> | null,
    b: number,
    h: number,
    p: Float32Array,
    lse: Float32Array,
    lseAt: number,
  ): void {
    const { seqQ: T, seqK: S, headDim: D, headsQ, headsKV, scale, causal, mask } = a;
    const kvh = Math.floor(h / (headsQ / headsKV));
    const q = Q.subarray((b * headsQ + h) * T * D, ((b * headsQ + h) * T + T) * D);
    const k = K.subarray((b * headsKV + kvh) * S * D, ((b * headsKV + kvh) * S + S) * D);
    gemm(false, true, T, S, D, q, k, p);
    for (let i = 0; i < T; i++) {
      const row = i * S;
      const limit = causal ? i + S - T : S - 1;
      let max = -Infinity;
      for (let j = 0; j < S; j++) {
        let s = j > limit ? -Infinity : p[row + j] * scale;
        if (mask !== null && M !== null && s !== -Infinity) {
          const [sb, sh, si, sj] = mask.strides;
          const mv = M[b * sb + h * sh + i * si + j * sj];
          if (mask.dtype === "bool" || mask.dtype === "uint8") {
            if (mv === 0) s = -Infinity;
          } else s += mv;
        }
        p[row + j] = s;
        if (s > max) max = s;
      }
      if (max === -Infinity) {
        p.fill(0, row, row + S);
        lse[lseAt + i] = -Infinity;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < S; j++) sum += Math.exp(p[row + j] - max);
      const l = max + Math.log(sum);
      lse[lseAt + i] = l;
      for (let j = 0; j < S; j++) p[row + j] = Math.exp(p[row + j] - l);
    }
  }

  const inputs = (a: AttentionArgs) => ({
    Q: readFloats(a.q, a.dtype) as Float32Array,
    K: readFloats(a.k, a.dtype) as Float32Array,
    V: readFloats(a.v, a.dtype) as Float32Array,
    M: a.mask === null ? null : (readNumbers(a.mask.data, a.mask.dtype) as ArrayLike<number>),
  });
  const narrow = (v: Float32Array, a: AttentionArgs): Storage =>
    a.dtype === "float32" ? v : f32ArrayToBf16(v);

  function attention(a: AttentionArgs): AttentionResult {
    const { batch: B, headsQ: H, seqQ: T, seqK: S, headDim: D, headsKV } = a;
    const { Q, K, V, M } = inputs(a);
    const out = new Float32Array(B * H * T * D);
    const lse = new Float32Array(B * H * T);
    const p = new Float32Array(T * S);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const head = (b * H + h) * T;
        probabilities(a, Q, K, M, b, h, p, lse, head);
        const kvh = Math.floor(h / (H / headsKV));
        const v = V.subarray((b * headsKV + kvh) * S * D, ((b * headsKV + kvh) * S + S) * D);
        gemm(false, false, T, D, S, p, v, out.subarray(head * D, (head + T) * D));
      }
    }
    return { out: narrow(out, a), lse };
  }

  function attentionGrad(a: AttentionArgs, res: AttentionResult, dout: Storage): AttentionGrads {
    const { batch: B, headsQ: H, seqQ: T, seqK: S, headDim: D, headsKV, scale } = a;
    const { Q, K, V, M } = inputs(a);
    const O = readFloats(res.out, a.dtype) as Float32Array;
    const G = readFloats(dout, a.dtype) as Float32Array;
    const dq = new Float32Array(Q.length);
    const dk = new Float32Array(K.length);
    const dv = new Float32Array(V.length);
    const p = new Float32Array(T * S);
    const dp = new Float32Array(T * S);
    const part = new Float32Array(S * D);
    const lse = new Float32Array(T);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const head = (b * H + h) * T;
        const kvh = Math.floor(h / (H / headsKV));
        const kvAt = (b * headsKV + kvh) * S * D;
        probabilities(a, Q, K, M, b, h, p, lse, 0);
        const g = G.subarray(head * D, (head + T) * D);
        const o = O.subarray(head * D, (head + T) * D);
        // dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P ∘ (dP - rowsum(dO ∘ O)) · scale.
        gemm(true, false, S, D, T, p, g, part);
        for (let i = 0; i < S * D; i++) dv[kvAt + i] += part[i];
        gemm(false, true, T, S, D, g, V.subarray(kvAt, kvAt + S * D), dp);
        for (let i = 0; i < T; i++) {
          let di = 0;
          for (let d = 0; d < D; d++) di += g[i * D + d] * o[i * D + d];
          for (let j = 0; j < S; j++) dp[i * S + j] = p[i * S + j] * (dp[i * S + j] - di) * scale;
        }
        // dQ = dS·K; dK += dSᵀ·Q.
        gemm(
          false,
          false,
          T,
          D,
          S,
          dp,
          K.subarray(kvAt, kvAt + S * D),
          dq.subarray(head * D, (head + T) * D),
        );
        gemm(true, false, S, D, T, dp, Q.subarray(head * D, (head + T) * D), part);
        for (let i = 0; i < S * D; i++) dk[kvAt + i] += part[i];
      }
    }
    return { dq: narrow(dq, a), dk: narrow(dk, a), dv: narrow(dv, a) };
  }

  return { attention, attentionGrad };
}
