import type { FloatDType } from "../../backend/dtype.js";
import { bf16ToF32, f16ToF32, toBf16, toF16 } from "../../backend/half.js";
import { Embedding, type InitOptions, Linear, ModuleList, RMSNorm } from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { add, div, mul, siluMul, tanh } from "../../tensor/ops/elementwise.js";
import { slice } from "../../tensor/ops/layout.js";
import { linear } from "../../tensor/ops/matmul.js";
import type { Tensor } from "../../tensor/tensor.js";
import { activation } from "../activation.js";
import { CausalLMBase, type DecoderInputs } from "../causal-lm.js";
import { frozenHead, type LinearHead, tiedHeadWeight } from "../common.js";
import type { KVCache } from "../kv-cache.js";
import { DecoderAttention, type LayerContext } from "./attention.js";
import type { DecoderConfig } from "./config.js";
import { queryKeyMask } from "./masks.js";
import { rotaryTables } from "./rope.js";

/** down(act(gate(x)) * up(x)), with separate gate/up projections or Phi-3's fused gate_up_proj. */
class DecoderMLP extends Module {
  private readonly act: (x: Tensor) => Tensor;

  constructor(
    readonly config: DecoderConfig,
    o: InitOptions,
  ) {
    super();
    const { hiddenSize: h, intermediateSize: m, mlpBias: bias } = config;
    if (config.fusedProjections) {
      this.registerModule("gate_up_proj", new Linear(h, 2 * m, { ...o, bias }));
    } else {
      this.registerModule("gate_proj", new Linear(h, m, { ...o, bias }));
      this.registerModule("up_proj", new Linear(h, m, { ...o, bias }));
    }
    this.registerModule("down_proj", new Linear(m, h, { ...o, bias }));
    this.act = activation(config.hiddenAct, "config.json", "hidden_act");
  }

  forward(x: Tensor): Tensor {
    const m = this.config.intermediateSize;
    let gate: Tensor;
    let up: Tensor;
    if (this.config.fusedProjections) {
      const both = this.call("gate_up_proj", x);
      gate = slice(both, -1, 0, m);
      up = slice(both, -1, m);
    } else {
      gate = this.call("gate_proj", x);
      up = this.call("up_proj", x);
    }
    const inner = this.config.hiddenAct === "silu" ? siluMul(gate, up) : mul(this.act(gate), up);
    return this.call("down_proj", inner);
  }
}

class DecoderLayer extends Module {
  constructor(
    readonly config: DecoderConfig,
    index: number,
    o: InitOptions,
  ) {
    super();
    const norm = () =>
      new RMSNorm(config.hiddenSize, config.rmsNormEps, { ...o, plusOne: config.normPlusOne });
    this.registerModule("self_attn", new DecoderAttention(config, index, o));
    this.registerModule("mlp", new DecoderMLP(config, o));
    this.registerModule("input_layernorm", norm());
    this.registerModule("post_attention_layernorm", norm());
    if (config.sandwichNorms) {
      this.registerModule("pre_feedforward_layernorm", norm());
      this.registerModule("post_feedforward_layernorm", norm());
    }
  }

  forward(x: Tensor, ctx: LayerContext): Tensor {
    const attn = (this.childModule("self_attn") as DecoderAttention).forward(
      this.call("input_layernorm", x),
      ctx,
    );
    if (!this.config.sandwichNorms) {
      const h = add(x, attn);
      return add(h, this.call("mlp", this.call("post_attention_layernorm", h)));
    }
    const h = add(x, this.call("post_attention_layernorm", attn));
    const mlp = this.call("mlp", this.call("pre_feedforward_layernorm", h));
    return add(h, this.call("post_feedforward_layernorm", mlp));
  }
}

/** v rounded to dtype, as a tensor of that dtype holds it. */
function roundTo(v: number, dtype: FloatDType): number {
  if (dtype === "bfloat16") return bf16ToF32(toBf16(v));
  if (dtype === "float16") return f16ToF32(toF16(v));
  return dtype === "float32" ? Math.fround(v) : v;
}

class DecoderModel extends Module {
  constructor(
    readonly config: DecoderConfig,
    o: InitOptions,
  ) {
    super();
    const c = config;
    this.registerModule("embed_tokens", new Embedding(c.vocabSize, c.hiddenSize, o));
    this.registerModule(
      "layers",
      new ModuleList(Array.from({ length: c.numLayers }, (_, i) => new DecoderLayer(c, i, o))),
    );
    this.registerModule(
      "norm",
      new RMSNorm(c.hiddenSize, c.rmsNormEps, { ...o, plusOne: c.normPlusOne }),
    );
  }

  forward(
    embeds: Tensor,
    keyMask: Tensor | null,
    cache: KVCache | null,
    positions: Tensor,
    past: number,
  ): Tensor {
    const c = this.config;
    const global = rotaryTables(positions, c.rope);
    const local = c.localRope === null ? global : rotaryTables(positions, c.localRope);
    const seq = embeds.shape[1];
    // Soft-capped scores need the causal rule in the mask; windows need a full mask. Layers
    // with the same window share one.
    const masks = new Map<number | null, Tensor | null>();
    const maskFor = (window: number | null): Tensor | null => {
      if (!masks.has(window)) {
        const full = window !== null || c.attnLogitSoftcap !== null;
        masks.set(window, full ? queryKeyMask(keyMask, past, seq, window, true) : keyMask);
      }
      return masks.get(window) as Tensor | null;
    };
    let h = c.scaleEmbeddings
      ? mul(embeds, roundTo(Math.sqrt(c.hiddenSize), embeds.dtype as FloatDType))
      : embeds;
    const layers = this.childModule("layers") as ModuleList<DecoderLayer>;
    layers.items.forEach((layer, i) => {
      const window = c.slidingWindows[i];
      const { cos, sin } = window === null ? global : local;
      h = layer.forward(h, { cos, sin, cache, mask: maskFor(window) });
    });
    return this.call("norm", h);
  }
}

/**
 * Llama, Qwen2, Mistral, Gemma, Gemma 2 and Phi-3 with a language-model head: one decoder
 * whose configuration says where they differ. Module names are transformers', so their
 * checkpoints load and PEFT's adapter keys match.
 */
export class DecoderForCausalLM extends CausalLMBase {
  constructor(
    readonly config: DecoderConfig,
    o: InitOptions = {},
  ) {
    super();
    this.registerModule("model", new DecoderModel(config, o));
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
    const h0 = embeds ?? this.embedTokens(ids as Tensor);
    return (this.childModule("model") as DecoderModel).forward(h0, mask, cache, positions, past);
  }

  protected head(h: Tensor): Tensor {
    const logits = this.config.tieWordEmbeddings
      ? linear(h, this.tiedWeight(), null, { name: "lm_head" })
      : this.call("lm_head", h);
    const cap = this.config.finalLogitSoftcap;
    return cap === null ? logits : mul(tanh(div(logits, cap)), cap);
  }

  protected linearHead(): LinearHead | null {
    if (this.config.finalLogitSoftcap !== null) return null;
    if (this.config.tieWordEmbeddings) return frozenHead(this.tiedWeight(), null);
    // An adapter's wrapper (or any module but a plain Linear) runs its own forward.
    const head = this.childModule("lm_head");
    return head?.constructor === Linear
      ? frozenHead((head as Linear).weight, (head as Linear).bias)
      : null;
  }

  private tiedWeight(): Tensor {
    return tiedHeadWeight(this.getModule("model.embed_tokens"));
  }
}
