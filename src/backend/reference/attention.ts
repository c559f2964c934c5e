import type { AttentionArgs, AttentionGrads, AttentionResult } from "../backend.js";
import type { Storage } from "../dtype.js";
import { floatsFor, readFloats, readNumbers, writeFloats } from "./float.js";

/**
 * Scores of one query row against every key, with the scale, the causal rule and the
 * mask applied; hidden keys get -Infinity.
 */
function rowScores(
  a: AttentionArgs,
  Q: ArrayLike<number>,
  K: ArrayLike<number>,
  M: ArrayLike<number> | null,
  b: number,
  h: number,
  i: number,
  out: Float64Array,
): void {
  const { headDim: D, seqK, seqQ, headsQ, headsKV } = a;
  const kvh = Math.floor(h / (headsQ / headsKV));
  const qAt = ((b * headsQ + h) * seqQ + i) * D;
  const limit = a.causal ? i + seqK - seqQ : seqK - 1;
  const mask = a.mask;
  for (let j = 0; j < seqK; j++) {
    if (j > limit) {
      out[j] = -Infinity;
      continue;
    }
    const kAt = ((b * headsKV + kvh) * seqK + j) * D;
    let s = 0;
    for (let d = 0; d < D; d++) s += Q[qAt + d] * K[kAt + d];
    s *= a.scale;
    if (mask !== null && M !== null) {
      const [sb, sh, si, sj] = mask.strides;
      const m = M[b * sb + h * sh + i * si + j * sj];
      if (mask.dtype === "bool" || mask.dtype === "uint8") {
        if (m === 0) s = -Infinity;
      } else {
        s += m;
      }
    }
    out[j] = s;
  }
}

function maskValues(a: AttentionArgs): ArrayLike<number> | null {
  return a.mask === null ? null : (readNumbers(a.mask.data, a.mask.dtype) as ArrayLike<number>);
}

export function attention(a: AttentionArgs): AttentionResult {
  const { batch: B, headsQ: H, seqQ: T, seqK: S, headDim: D, headsKV, dtype } = a;
  const Q = readFloats(a.q, dtype);
  const K = readFloats(a.k, dtype);
  const V = readFloats(a.v, dtype);
  const M = maskValues(a);
  const out = floatsFor(dtype, B * H * T * D);
  const lse = dtype === "float64" ? new Float64Array(B * H * T) : new Float32Array(B * H * T);
  const s = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / headsKV));
      for (let i = 0; i < T; i++) {
        const row = (b * H + h) * T + i;
        rowScores(a, Q, K, M, b, h, i, s);
        let max = -Infinity;
        for (let j = 0; j < S; j++) max = Math.max(max, s[j]);
        if (max === -Infinity) {
          // A query that may see no key attends to nothing: output 0, not NaN.
          lse[row] = -Infinity;
          continue;
        }
        let sum = 0;
        acc.fill(0);
        for (let j = 0; j < S; j++) {
          const p = Math.exp(s[j] - max);
          if (p === 0) continue;
          sum += p;
          const vAt = ((b * headsKV + kvh) * S + j) * D;
          for (let d = 0; d < D; d++) acc[d] += p * V[vAt + d];
        }
        lse[row] = max + Math.log(sum);
        for (let d = 0; d < D; d++) out[row * D + d] = acc[d] / sum;
      }
    }
  }
  return { out: writeFloats(out, dtype), lse };
}

export function attentionGrad(
  a: AttentionArgs,
  res: AttentionResult,
  dout: Storage,
): AttentionGrads {
  const { batch: B, headsQ: H, seqQ: T, seqK: S, headDim: D, headsKV, dtype } = a;
  const Q = readFloats(a.q, dtype);
  const K = readFloats(a.k, dtype);
  const V = readFloats(a.v, dtype);
  const O = readFloats(res.out, dtype);
  const G = readFloats(dout, dtype);
  const M = maskValues(a);
  const dq = new Float64Array(Q.length);
  const dk = new Float64Array(K.length);
  const dv = new Float64Array(V.length);
  const s = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / headsKV));
      for (let i = 0; i < T; i++) {
        const row = (b * H + h) * T + i;
        const lse = res.lse[row];
        if (lse === -Infinity) continue;
        rowScores(a, Q, K, M, b, h, i, s);
        const at = row * D;
        // D_i = dout_i . out_i, the softmax Jacobian's correction term.
        let di = 0;
        for (let d = 0; d < D; d++) di += G[at + d] * O[at + d];
        for (let j = 0; j < S; j++) {
          const p = Math.exp(s[j] - lse);
          if (p === 0) continue;
          const kvAt = ((b * headsKV + kvh) * S + j) * D;
          let dp = 0;
          for (let d = 0; d < D; d++) {
            dp += G[at + d] * V[kvAt + d];
            dv[kvAt + d] += p * G[at + d];
          }
          const ds = p * (dp - di) * a.scale;
          for (let d = 0; d < D; d++) {
            dq[at + d] += ds * K[kvAt + d];
            dk[kvAt + d] += ds * Q[at + d];
          }
        }
      }
    }
  }
  const narrow = (v: Float64Array) =>
    writeFloats(dtype === "float64" ? v : Float32Array.from(v), dtype);
  return { dq: narrow(dq), dk: narrow(dk), dv: narrow(dv) };
}
