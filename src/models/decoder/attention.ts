import { type InitOptions, Linear, RMSNorm } from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { rope, scaledDotProductAttention } from "../../tensor/ops/attention.js";
import { cast, mul, tanh, where } from "../../tensor/ops/elementwise.js";
import { slice, transpose } from "../../tensor/ops/layout.js";
import { matmul } from "../../tensor/ops/matmul.js";
import { softmax } from "../../tensor/ops/softmax.js";
import { reshape } from "../../tensor/ops/view.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { KVCache } from "../kv-cache.js";
import type { DecoderConfig } from "./config.js";

export interface LayerContext {
  cos: Tensor;
  sin: Tensor;
  /** This layer's mask: the key mask [B, 1, 1, S], or a full [B, 1, T, S] one (windows, soft-capping). */
  mask: Tensor | null;
  cache: KVCache | null;
}

/**
 * Self-attention with grouped-query heads and rotary positions: separate q/k/v
 * projections or Phi-3's fused qkv_proj, optional per-head q/k norms and Gemma 2's
 * soft-capped scores.
 */
export class DecoderAttention extends Module {
  constructor(
    readonly config: DecoderConfig,
    readonly index: number,
    o: InitOptions,
  ) {
    super();
    const { hiddenSize: h, numHeads: nh, numKVHeads: nkv, headDim: d, qkvBias: bias } = config;
    if (config.fusedProjections) {
      this.registerModule("qkv_proj", new Linear(h, (nh + 2 * nkv) * d, { ...o, bias }));
    } else {
      this.registerModule("q_proj", new Linear(h, nh * d, { ...o, bias }));
      this.registerModule("k_proj", new Linear(h, nkv * d, { ...o, bias }));
      this.registerModule("v_proj", new Linear(h, nkv * d, { ...o, bias }));
    }
    this.registerModule("o_proj", new Linear(nh * d, h, { ...o, bias: config.oBias }));
    if (config.qkNorm) {
      this.registerModule("q_norm", new RMSNorm(d, config.rmsNormEps, o));
      this.registerModule("k_norm", new RMSNorm(d, config.rmsNormEps, o));
    }
  }

  private project(x: Tensor): [Tensor, Tensor, Tensor] {
    if (!this.config.fusedProjections)
      return [this.call("q_proj", x), this.call("k_proj", x), this.call("v_proj", x)];
    const { numHeads: nh, numKVHeads: nkv, headDim: d } = this.config;
    const qkv = this.call("qkv_proj", x);
    return [
      slice(qkv, -1, 0, nh * d),
      slice(qkv, -1, nh * d, (nh + nkv) * d),
      slice(qkv, -1, (nh + nkv) * d),
    ];
  }

  forward(x: Tensor, ctx: LayerContext): Tensor {
    const [b, t] = x.shape;
    const c = this.config;
    const { numHeads: nh, numKVHeads: nkv, headDim: d } = c;
    // [B, T, H*D] -> [B, H, T, D], through the per-head norm where there is one.
    const heads = (y: Tensor, n: number, norm?: string) => {
      const split = reshape(y, [b, t, n, d]);
      return transpose(norm && c.qkNorm ? this.call(norm, split) : split, 1, 2);
    };
    const [qx, kx, vx] = this.project(x);
    const q = rope(heads(qx, nh, "q_norm"), ctx.cos, ctx.sin);
    let k = rope(heads(kx, nkv, "k_norm"), ctx.cos, ctx.sin);
    let v = heads(vx, nkv);
    if (ctx.cache !== null) ({ k, v } = ctx.cache.update(this.index, k, v));
    const attn =
      c.attnLogitSoftcap === null
        ? scaledDotProductAttention(q, k, v, {
            attnMask: ctx.mask,
            isCausal: true,
            scale: c.attentionScale,
          })
        : softcappedAttention(q, k, v, ctx.mask, c.attentionScale, c.attnLogitSoftcap);
    return this.call("o_proj", reshape(transpose(attn, 1, 2), [b, t, nh * d]));
  }
}

/** The most negative value of each compute dtype: a masked score that cannot overflow. */
const LOWEST = {
  float32: -3.4028234663852886e38,
  bfloat16: -3.3895313892515355e38,
  float16: -65504,
  float64: -Number.MAX_VALUE,
};

/**
 * Attention with tanh soft-capped scores (Gemma 2): the cap applies to the scaled scores
 * before the mask, which must therefore hold the causal rule too. Composed of tensor ops
 * (the fused kernel has no cap), so its gradient comes from theirs; softmax in float32.
 */
function softcappedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: number,
  cap: number,
): Tensor {
  const [B, Hq, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const g = Hq / Hkv;
  // The g query heads of one KV head share its keys: [B, Hkv, g*T, D] · [B, Hkv, D, S].
  const raw = reshape(matmul(reshape(q, [B, Hkv, g * T, D]), transpose(k, 2, 3)), [B, Hq, T, S]);
  let scores = mul(tanh(mul(raw, scale / cap)), cap);
  const dtype = scores.dtype as keyof typeof LOWEST;
  if (mask !== null) scores = where(mask, scores, LOWEST[dtype]);
  const p = cast(softmax(cast(scores, "float32"), -1), dtype);
  return reshape(matmul(reshape(p, [B, Hkv, g * T, S]), v), [B, Hq, T, D]);
}
