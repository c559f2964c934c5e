import { ValueError } from "../../errors.js";
import { Embedding, type InitOptions, Linear, ModuleList, RMSNorm } from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { rope, rotaryCosSin, scaledDotProductAttention } from "../../tensor/ops/attention.js";
import { add, siluMul } from "../../tensor/ops/elementwise.js";
import { transpose } from "../../tensor/ops/layout.js";
import { linear } from "../../tensor/ops/matmul.js";
import { reshape } from "../../tensor/ops/view.js";
import type { Tensor } from "../../tensor/tensor.js";
import { CausalLMBase, type DecoderInputs } from "../causal-lm.js";
import type { KVCache } from "../kv-cache.js";
import type { LlamaConfig } from "./config.js";

type Build = InitOptions;

interface LayerContext {
  cos: Tensor;
  sin: Tensor;
  mask: Tensor | null;
  cache: KVCache | null;
}

class LlamaAttention extends Module {
  constructor(
    readonly config: LlamaConfig,
    readonly index: number,
    o: Build,
  ) {
    super();
    const { hiddenSize: h, numHeads: nh, numKVHeads: nkv, headDim: d } = config;
    this.registerModule("q_proj", new Linear(h, nh * d, { ...o, bias: config.qkvBias }));
    this.registerModule("k_proj", new Linear(h, nkv * d, { ...o, bias: config.qkvBias }));
    this.registerModule("v_proj", new Linear(h, nkv * d, { ...o, bias: config.qkvBias }));
    this.registerModule("o_proj", new Linear(nh * d, h, { ...o, bias: config.oBias }));
  }

  forward(x: Tensor, ctx: LayerContext): Tensor {
    const [b, t] = x.shape;
    const { numHeads: nh, numKVHeads: nkv, headDim: d } = this.config;
    // [B, T, H*D] -> [B, H, T, D]
    const heads = (y: Tensor, n: number) => transpose(reshape(y, [b, t, n, d]), 1, 2);
    const q = rope(heads(this.call("q_proj", x), nh), ctx.cos, ctx.sin);
    let k = rope(heads(this.call("k_proj", x), nkv), ctx.cos, ctx.sin);
    let v = heads(this.call("v_proj", x), nkv);
    if (ctx.cache !== null) ({ k, v } = ctx.cache.update(this.index, k, v));
    const attn = scaledDotProductAttention(q, k, v, { attnMask: ctx.mask, isCausal: true });
    return this.call("o_proj", reshape(transpose(attn, 1, 2), [b, t, nh * d]));
  }
}

class LlamaMLP extends Module {
  constructor(config: LlamaConfig, o: Build) {
    super();
    const { hiddenSize: h, intermediateSize: m, mlpBias: bias } = config;
    this.registerModule("gate_proj", new Linear(h, m, { ...o, bias }));
    this.registerModule("up_proj", new Linear(h, m, { ...o, bias }));
    this.registerModule("down_proj", new Linear(m, h, { ...o, bias }));
  }

  forward(x: Tensor): Tensor {
    return this.call("down_proj", siluMul(this.call("gate_proj", x), this.call("up_proj", x)));
  }
}

class LlamaDecoderLayer extends Module {
  constructor(config: LlamaConfig, index: number, o: Build) {
    super();
    this.registerModule("self_attn", new LlamaAttention(config, index, o));
    this.registerModule("mlp", new LlamaMLP(config, o));
    this.registerModule("input_layernorm", new RMSNorm(config.hiddenSize, config.rmsNormEps, o));
    this.registerModule(
      "post_attention_layernorm",
      new RMSNorm(config.hiddenSize, config.rmsNormEps, o),
    );
  }

  forward(x: Tensor, ctx: LayerContext): Tensor {
    const attn = this.childModule("self_attn") as LlamaAttention;
    const h = add(x, attn.forward(this.call("input_layernorm", x), ctx));
    return add(h, this.call("mlp", this.call("post_attention_layernorm", h)));
  }
}

class LlamaModel extends Module {
  constructor(
    readonly config: LlamaConfig,
    o: Build,
  ) {
    super();
    this.registerModule("embed_tokens", new Embedding(config.vocabSize, config.hiddenSize, o));
    this.registerModule(
      "layers",
      new ModuleList(
        Array.from({ length: config.numLayers }, (_, i) => new LlamaDecoderLayer(config, i, o)),
      ),
    );
    this.registerModule("norm", new RMSNorm(config.hiddenSize, config.rmsNormEps, o));
  }

  forward(h0: Tensor, ctx: Omit<LayerContext, "cos" | "sin">, positions: Tensor): Tensor {
    const { cos, sin } = rotaryCosSin(positions, this.config.headDim, this.config.ropeTheta);
    let h = h0;
    const layers = this.childModule("layers") as ModuleList<LlamaDecoderLayer>;
    for (const layer of layers.items) h = layer.forward(h, { ...ctx, cos, sin });
    return this.call("norm", h);
  }
}

/** Llama, Qwen2 and Mistral decoders with a language-model head (module names as in transformers). */
export class LlamaForCausalLM extends CausalLMBase {
  constructor(
    readonly config: LlamaConfig,
    o: Build = {},
  ) {
    super();
    this.registerModule("model", new LlamaModel(config, o));
    if (!config.tieWordEmbeddings) {
      this.registerModule(
        "lm_head",
        new Linear(config.hiddenSize, config.vocabSize, { ...o, bias: false }),
      );
    }
    this.assignPaths();
  }

  get numLayers(): number {
    return this.config.numLayers;
  }

  /** max_position_embeddings. */
  get contextLength(): number {
    return this.config.maxPositionEmbeddings;
  }

  /** Rotary positions have no hard limit. */
  get maxPositions(): null {
    return null;
  }

  get modelType(): string {
    return this.config.modelType;
  }

  embedTokens(ids: Tensor): Tensor {
    return (
      this.getModule("model.embed_tokens") as Module & { forward(x: Tensor): Tensor }
    ).forward(ids);
  }

  get layout() {
    const c = this.config;
    return {
      layers: c.numLayers,
      heads: c.numHeads,
      kvHeads: c.numKVHeads,
      headDim: c.headDim,
      hidden: c.hiddenSize,
    };
  }

  protected decode({ ids, embeds, positions, mask, cache, past }: DecoderInputs): Tensor {
    const window = this.config.slidingWindow;
    const h0 = embeds ?? this.embedTokens(ids!);
    const total = past + h0.shape[1];
    if (window !== null && total > window) {
      throw new ValueError(
        `LlamaForCausalLM.forward: ${total} positions exceed the sliding_window of ${window}; sliding-window attention is not implemented`,
      );
    }
    return (this.childModule("model") as LlamaModel).forward(h0, { mask, cache }, positions);
  }

  protected head(h: Tensor): Tensor {
    if (!this.config.tieWordEmbeddings) return this.call("lm_head", h);
    const embed = (this.getModule("model.embed_tokens") as Embedding).weight;
    return linear(h, embed, null, { name: "lm_head" });
  }
}
