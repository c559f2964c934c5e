import type { AttentionArgs } from "../../backend/backend.js";
import { ShapeError, ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { broadcastsTo, fmt, sameShape } from "../shape.js";
import { Tensor } from "../tensor.js";
import { cast, cos as cosOp, mul, sin as sinOp } from "./elementwise.js";
import { concat } from "./layout.js";
import { matmulDType } from "./matmul.js";
import { backend, rawAs, requireFloat } from "./util.js";
import { reshape } from "./view.js";

export interface AttentionOptions {
  /** Broadcastable to [B, Hq, Tq, Tk]: bool (true = may attend) or float (added to the scores). */
  attnMask?: Tensor | null;
  /** Query i sees key j only if j <= i + Tk - Tq (the queries are the last Tq positions). */
  isCausal?: boolean;
  /** Defaults to 1/sqrt(D). */
  scale?: number;
}

/**
 * softmax(Q Kᵀ · scale + mask) V for q [B, Hq, Tq, D] and k, v [B, Hkv, Tk, D], with
 * grouped-query attention when Hq is a multiple of Hkv. A query that may see no key gets
 * a zero output. Under autocast q, k and v compute in the autocast dtype.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions = {},
): Tensor {
  const op = "scaledDotProductAttention";
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new ShapeError(
      op,
      `expected 4-D q, k, v [batch, heads, seq, dim], got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`,
    );
  }
  const [B, Hq, Tq, D] = q.shape;
  const [, Hkv, Tk] = k.shape;
  if (
    !sameShape(k.shape, v.shape) ||
    k.shape[0] !== B ||
    k.shape[3] !== D ||
    Hkv === 0 ||
    Hq % Hkv !== 0
  ) {
    throw new ShapeError(
      op,
      `q ${fmt(q.shape)}, k ${fmt(k.shape)} and v ${fmt(v.shape)} do not fit: expected k and v of shape [${B}, Hkv, Tk, ${D}] with ${Hq} query heads a multiple of Hkv`,
    );
  }
  const dtype = matmulDType(op, [q, k, v]);
  const Q = cast(q, dtype);
  const K = cast(k, dtype);
  const V = cast(v, dtype);
  const mask = options.attnMask ?? null;
  let maskArg: AttentionArgs["mask"] = null;
  if (mask !== null) {
    const full = [B, Hq, Tq, Tk];
    if (!broadcastsTo(mask.shape, full)) {
      throw new ShapeError(
        op,
        `attnMask of shape ${fmt(mask.shape)} does not broadcast to the scores' shape ${fmt(full)}`,
      );
    }
    if (mask.requiresGrad)
      throw new ValueError(`${op}: gradients through attnMask are not supported`);
    const dims = [...new Array(4 - mask.ndim).fill(1), ...mask.shape];
    const strides = [0, 0, 0, 0];
    let s = 1;
    for (let d = 3; d >= 0; d--) {
      strides[d] = dims[d] === 1 ? 0 : s;
      s *= dims[d];
    }
    maskArg = {
      data: mask.data,
      dtype: mask.dtype,
      strides: strides as [number, number, number, number],
    };
  }
  const args: AttentionArgs = {
    q: Q.data,
    k: K.data,
    v: V.data,
    batch: B,
    headsQ: Hq,
    headsKV: Hkv,
    seqQ: Tq,
    seqK: Tk,
    headDim: D,
    scale: options.scale ?? 1 / Math.sqrt(D),
    causal: options.isCausal ?? false,
    mask: maskArg,
    dtype,
  };
  const res = backend().attention(args);
  const out = new Tensor(res.out, [B, Hq, Tq, D], dtype);
  return record(out, "attention", [Q, K, V], (dy) => {
    const g = backend().attentionGrad(args, res, dy.data);
    return [
      new Tensor(g.dq, Q.shape, dtype),
      new Tensor(g.dk, K.shape, dtype),
      new Tensor(g.dv, V.shape, dtype),
    ];
  });
}

/**
 * Rotary position embedding, Hugging Face half-rotation layout:
 * y = x·cos + rotate_half(x)·sin with rotate_half(x) = [-x2, x1]. x is [B, H, T, D];
 * cos and sin are [T, D], [1, T, D] or [B, T, D] and are cast to x's dtype.
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const dtype = requireFloat("rope", x);
  if (x.ndim !== 4 || x.shape[3] % 2 !== 0) {
    throw new ShapeError(
      "rope",
      `expected x of shape [batch, heads, seq, dim] with an even dim, got ${fmt(x.shape)}`,
    );
  }
  const [B, H, T, D] = x.shape;
  const table = (t: Tensor, name: string): Tensor => {
    const ok =
      (t.ndim === 2 && t.shape[0] === T && t.shape[1] === D) ||
      (t.ndim === 3 &&
        (t.shape[0] === 1 || t.shape[0] === B) &&
        t.shape[1] === T &&
        t.shape[2] === D);
    if (!ok)
      throw new ShapeError(
        "rope",
        `${name} of shape ${fmt(t.shape)} does not fit x ${fmt(x.shape)}: expected [${T}, ${D}], [1, ${T}, ${D}] or [${B}, ${T}, ${D}]`,
      );
    if (t.requiresGrad)
      throw new ValueError(
        `rope: gradients through ${name} are not supported; pass a tensor that does not require grad`,
      );
    return rawAs(t, dtype);
  };
  const C = table(cos, "cos");
  const S = table(sin, "sin");
  if (!sameShape(C.shape, S.shape))
    throw new ShapeError("rope", `cos ${fmt(cos.shape)} and sin ${fmt(sin.shape)} differ in shape`);
  const cosBatch = C.ndim === 3 ? C.shape[0] : 1;
  const run = (src: Tensor, inverse: boolean) =>
    new Tensor(
      backend().rope(src.data, C.data, S.data, B, H, T, D, cosBatch, inverse, dtype),
      x.shape,
      dtype,
    );
  const out = run(x, false);
  return record(out, "rope", [x], (dy) => [run(dy, true)]);
}

/**
 * Rotary tables as Hugging Face builds them from the inverse frequencies (see
 * models/decoder/rope.ts for every scaling rule): angles = position · inv_freq in
 * float32, emb = [angles, angles], tables cos(emb) and sin(emb) times attentionFactor.
 * positions [T] give [1, T, dim], positions [B, T] give [B, T, dim]; both are float32.
 */
export function rotaryCosSin(
  positions: Tensor,
  invFreq: Float32Array,
  attentionFactor = 1,
): { cos: Tensor; sin: Tensor } {
  if (positions.ndim !== 1 && positions.ndim !== 2) {
    throw new ShapeError(
      "rotaryCosSin",
      `expected positions of shape [T] or [B, T], got ${fmt(positions.shape)}`,
    );
  }
  const pos = positions.toFlatNumbers();
  const half = invFreq.length;
  const angles = new Float32Array(pos.length * half);
  for (let p = 0; p < pos.length; p++) {
    for (let i = 0; i < half; i++) angles[p * half + i] = Math.fround(pos[p]) * invFreq[i];
  }
  const lead = positions.ndim === 1 ? [1, pos.length] : [...positions.shape];
  const a = reshape(new Tensor(angles, [pos.length, half], "float32"), [...lead, half]);
  const emb = concat([a, a], -1);
  if (attentionFactor === 1) return { cos: cosOp(emb), sin: sinOp(emb) };
  return { cos: mul(cosOp(emb), attentionFactor), sin: mul(sinOp(emb), attentionFactor) };
}
