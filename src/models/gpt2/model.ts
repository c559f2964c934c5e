import type { ConfigReader } from "../../io/config.js";
import { Conv1D, Embedding, type InitOptions, LayerNorm, ModuleList } from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { scaledDotProductAttention } from "../../tensor/ops/attention.js";
import { add } from "../../tensor/ops/elementwise.js";
import { slice, transpose } from "../../tensor/ops/layout.js";
import { linear } from "../../tensor/ops/matmul.js";
import { reshape } from "../../tensor/ops/view.js";
import type { Tensor } from "../../tensor/tensor.js";
import { activation } from "../activation.js";
import { CausalLMBase, type DecoderInputs } from "../causal-lm.js";
import { frozenHead, type LinearHead, tiedHeadWeight } from "../common.js";
import type { KVCache } from "../kv-cache.js";

export interface GPT2Config {
  vocabSize: number;
  hidden: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  inner: number;
  act: (x: Tensor) => Tensor;
  eps: number;
  scaleAttnWeights: boolean;
  scaleByInverseLayerIdx: boolean;
}

export function parseGPT2Config(c: ConfigReader): GPT2Config {
  const hidden = c.int("n_embd", undefined, 1);
  const numHeads = c.int("n_head", undefined, 1);
  if (hidden % numHeads !== 0) c.unsupported("n_head", `n_embd ${hidden} is not a multiple of it`);
  if (c.has("tie_word_embeddings") && !c.bool("tie_word_embeddings")) {
    c.unsupported("tie_word_embeddings", "GPT-2 ties its output head to wte");
  }
  return {
    vocabSize: c.int("vocab_size", undefined, 1),
    hidden,
    numLayers: c.int("n_layer", undefined, 1),
    numHeads,
    maxPositions: c.int("n_positions", 1024, 1),
    inner: c.has("n_inner") ? c.int("n_inner", undefined, 1) : 4 * hidden,
    act: activation(c.string("activation_function", "gelu_new"), c.file, "activation_function"),
    eps: c.number("layer_norm_epsilon", 1e-5),
    scaleAttnWeights: c.bool("scale_attn_weights", true),
    scaleByInverseLayerIdx: c.bool("scale_attn_by_inverse_layer_idx", false),
  };
}

type Build = InitOptions;

class GPT2Attention extends Module {
  constructor(
    readonly config: GPT2Config,
    readonly index: number,
    o: Build,
  ) {
    super();
    this.registerModule("c_attn", new Conv1D(config.hidden, 3 * config.hidden, o));
    this.registerModule("c_proj", new Conv1D(config.hidden, config.hidden, o));
  }

  forward(x: Tensor, mask: Tensor | null, cache: KVCache | null): Tensor {
    const [b, t] = x.shape;
    const { hidden: e, numHeads: nh } = this.config;
    const d = e / nh;
    const qkv = this.call("c_attn", x);
    const heads = (i: number) =>
      transpose(reshape(slice(qkv, 2, i * e, (i + 1) * e), [b, t, nh, d]), 1, 2);
    const q = heads(0);
    let k = heads(1);
    let v = heads(2);
    if (cache !== null) ({ k, v } = cache.update(this.index, k, v));
    let scale = this.config.scaleAttnWeights ? 1 / Math.sqrt(d) : 1;
    if (this.config.scaleByInverseLayerIdx) scale /= this.index + 1;
    const attn = scaledDotProductAttention(q, k, v, { attnMask: mask, isCausal: true, scale });
    return this.call("c_proj", reshape(transpose(attn, 1, 2), [b, t, e]));
  }
}

class GPT2MLP extends Module {
  constructor(
    readonly config: GPT2Config,
    o: Build,
  ) {
    super();
    this.registerModule("c_fc", new Conv1D(config.hidden, config.inner, o));
    this.registerModule("c_proj", new Conv1D(config.inner, config.hidden, o));
  }

  forward(x: Tensor): Tensor {
    return this.call("c_proj", this.config.act(this.call("c_fc", x)));
  }
}

class GPT2Block extends Module {
  constructor(config: GPT2Config, index: number, o: Build) {
    super();
    this.registerModule("ln_1", new LayerNorm(config.hidden, config.eps, o));
    this.registerModule("attn", new GPT2Attention(config, index, o));
    this.registerModule("ln_2", new LayerNorm(config.hidden, config.eps, o));
    this.registerModule("mlp", new GPT2MLP(config, o));
  }

  forward(x: Tensor, mask: Tensor | null, cache: KVCache | null): Tensor {
    const attn = this.childModule("attn") as GPT2Attention;
    const h = add(x, attn.forward(this.call("ln_1", x), mask, cache));
    return add(h, this.call("mlp", this.call("ln_2", h)));
  }
}

class GPT2Model extends Module {
  constructor(config: GPT2Config, o: Build) {
    super();
    this.registerModule("wte", new Embedding(config.vocabSize, config.hidden, o));
    this.registerModule("wpe", new Embedding(config.maxPositions, config.hidden, o));
    this.registerModule(
      "h",
      new ModuleList(
        Array.from({ length: config.numLayers }, (_, i) => new GPT2Block(config, i, o)),
      ),
    );
    this.registerModule("ln_f", new LayerNorm(config.hidden, config.eps, o));
  }

  forward(h0: Tensor, positions: Tensor, mask: Tensor | null, cache: KVCache | null): Tensor {
    let h = add(h0, this.call("wpe", positions));
    for (const block of (this.childModule("h") as ModuleList<GPT2Block>).items)
      h = block.forward(h, mask, cache);
    return this.call("ln_f", h);
  }
}

/** GPT-2 with its output head tied to the token embeddings (module names as in transformers). */
export class GPT2LMHeadModel extends CausalLMBase {
  constructor(
    readonly config: GPT2Config,
    o: Build = {},
  ) {
    super();
    this.registerModule("transformer", new GPT2Model(config, o));
    this.assignPaths();
  }

  get numLayers(): number {
    return this.config.numLayers;
  }

  /** n_positions. */
  get contextLength(): number {
    return this.config.maxPositions;
  }

  /** n_positions: position embeddings are learned for these positions only. */
  get maxPositions(): number {
    return this.config.maxPositions;
  }

  get modelType(): string {
    return "gpt2";
  }

  embedTokens(ids: Tensor): Tensor {
    return (this.getModule("transformer.wte") as Module & { forward(x: Tensor): Tensor }).forward(
      ids,
    );
  }

  get layout() {
    const c = this.config;
    const headDim = c.hidden / c.numHeads;
    return {
      layers: c.numLayers,
      heads: c.numHeads,
      kvHeads: c.numHeads,
      headDim,
      hidden: c.hidden,
    };
  }

  protected decode({ ids, embeds, positions, mask, cache }: DecoderInputs): Tensor {
    const h0 = embeds ?? this.embedTokens(ids!);
    return (this.childModule("transformer") as GPT2Model).forward(h0, positions, mask, cache);
  }

  protected head(h: Tensor): Tensor {
    return linear(h, this.tiedWeight(), null, { name: "lm_head" });
  }

  protected linearHead(): LinearHead | null {
    return frozenHead(this.tiedWeight(), null);
  }

  private tiedWeight(): Tensor {
    return tiedHeadWeight(this.getModule("transformer.wte"));
  }
}
