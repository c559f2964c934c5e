import type { FloatDType } from "../../../backend/dtype.js";
import { ValueError } from "../../../errors.js";
import { ModuleDict, ParameterDict } from "../../../nn/containers.js";
import { Conv1D, Embedding, Linear } from "../../../nn/layers.js";
import { randn, uniform, zeros } from "../../../tensor/creation.js";
import { dropout } from "../../../tensor/ops/dropout.js";
import { mul } from "../../../tensor/ops/elementwise.js";
import { embedding } from "../../../tensor/ops/indexing.js";
import { transpose } from "../../../tensor/ops/layout.js";
import { linear, matmul } from "../../../tensor/ops/matmul.js";
import type { Generator } from "../../../tensor/random.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdditiveLayer, type BaseLayer } from "../adapter-layer.js";
import { currentRowAdapters } from "../mixed-batch.js";
import { Dora } from "./dora.js";
import type { LoraParts, LoraVariant } from "./variant.js";

export interface LoraAdapterSettings {
  r: number;
  alpha: number;
  dropout: number;
  init: boolean | "gaussian";
  useRslora: boolean;
  useDora: boolean;
  dtype: FloatDType;
  generator?: Generator;
}

/** A leaf parameter, trainable. */
function param(t: Tensor): Tensor {
  return t.detach().requiresGrad_();
}

/** A bias-free Linear holding `w` [out, in] as its trainable weight (PEFT's lora_A / lora_B children). */
function weightOnly(w: Tensor): Linear {
  const [outF, inF] = w.shape;
  const l = new Linear(inF, outF, { bias: false, init: "zeros", dtype: w.dtype as FloatDType });
  l.setParameter("weight", param(w));
  return l;
}

/**
 * LoRA on a linear layer, GPT-2 Conv1D or embedding: ΔW = B·A·scaling with A [r, in],
 * B [out, r], scaling = alpha/r (alpha/√r with rsLoRA). A variant (DoRA) changes the
 * computation of the adapters that use it. Children and parameter names follow PEFT
 * (lora_A.<adapter>.weight, ...).
 */
export class LoraLayer extends AdditiveLayer<LoraAdapterSettings> {
  protected readonly adapterLayerNames = [
    "lora_A",
    "lora_B",
    "lora_embedding_A",
    "lora_embedding_B",
    "lora_magnitude_vector",
  ] as const;
  private readonly variants = new Map<string, LoraVariant>();

  constructor(base: BaseLayer) {
    super(base);
    if (base instanceof Embedding) {
      this.registerModule("lora_embedding_A", new ParameterDict());
      this.registerModule("lora_embedding_B", new ParameterDict());
    } else {
      this.registerModule("lora_A", new ModuleDict<Linear>());
      this.registerModule("lora_B", new ModuleDict<Linear>());
      this.registerModule("lora_magnitude_vector", new ParameterDict());
    }
  }

  private get isEmbedding(): boolean {
    return this.base instanceof Embedding;
  }

  private dict<T>(name: string): T {
    return this.childModule(name) as T;
  }

  scaling(name: string): number {
    const s = this.settingsOf(name);
    return s.useRslora ? s.alpha / Math.sqrt(s.r) : s.alpha / s.r;
  }

  /** A as [r, in] and B as [out, r] for any base layer type. */
  factors(name: string): { A: Tensor; B: Tensor } {
    if (this.isEmbedding) {
      return {
        A: this.dict<ParameterDict>("lora_embedding_A").get(name)!,
        B: this.dict<ParameterDict>("lora_embedding_B").get(name)!,
      };
    }
    return {
      A: this.dict<ModuleDict<Linear>>("lora_A").get(name)!.weight,
      B: this.dict<ModuleDict<Linear>>("lora_B").get(name)!.weight,
    };
  }

  /** What a variant reads of this layer for adapter `name`. */
  private parts(name: string): LoraParts {
    const extra = new Map<string, Tensor>();
    const m = this.isEmbedding
      ? undefined
      : this.dict<ParameterDict>("lora_magnitude_vector").get(name);
    if (m !== undefined) extra.set("lora_magnitude_vector", m);
    return {
      ...this.factors(name),
      scale: this.scaling(name),
      baseWeight: (dtype) => this.baseWeightOutIn(dtype as FloatDType),
      extra,
    };
  }

  /** Creates (or replaces) an adapter with PEFT's initialisation. */
  addAdapter(name: string, s: LoraAdapterSettings): void {
    const [inF, outF] = [this.inFeatures, this.outFeatures];
    const o = { dtype: s.dtype, generator: s.generator };
    if (this.isEmbedding) {
      // PEFT: A zeros and B normal for init=true; gaussian and false draw both.
      const A =
        s.init === true
          ? zeros([s.r, inF], o)
          : randn([s.r, inF], { ...o, std: s.init === "gaussian" ? 1 / s.r : 1 });
      const B = randn([outF, s.r], o);
      this.register(name, s, { lora_embedding_A: param(A), lora_embedding_B: param(B) });
      return;
    }
    // nn.Linear's default init is kaiming-uniform(a=√5): U(±1/√fan_in); true keeps it for A and zeroes B.
    const A =
      s.init === "gaussian"
        ? randn([s.r, inF], { ...o, std: 1 / s.r })
        : uniform([s.r, inF], -1 / Math.sqrt(inF), 1 / Math.sqrt(inF), o);
    const B =
      s.init === false
        ? uniform([outF, s.r], -1 / Math.sqrt(s.r), 1 / Math.sqrt(s.r), o)
        : zeros([outF, s.r], o);
    this.register(name, s, { lora_A: weightOnly(A), lora_B: weightOnly(B) });
    if (s.useDora) {
      const variant = new Dora();
      for (const [dict, t] of Object.entries(variant.create(this.parts(name))))
        this.dict<ParameterDict>(dict).set(name, t);
      this.variants.set(name, variant);
    }
  }

  override deleteAdapter(name: string): void {
    super.deleteAdapter(name);
    this.variants.delete(name);
  }

  /** The base weight as [out, in] in `dtype`. */
  private baseWeightOutIn(dtype: FloatDType): Tensor {
    const w = this.base.weight.to(dtype);
    return this.base instanceof Conv1D ? transpose(w) : w;
  }

  protected delta(name: string, x: Tensor, _baseResult: Tensor): Tensor {
    const s = this.settingsOf(name);
    const scale = this.scaling(name);
    const { A, B } = this.factors(name);
    if (this.isEmbedding) return mul(linear(embedding(x, transpose(A)), B), scale);
    const xd = this.training && s.dropout > 0 ? dropout(x, s.dropout) : x;
    const variant = this.variants.get(name);
    if (variant !== undefined) {
      if (currentRowAdapters() !== null)
        throw new ValueError(
          "adapterNames: per-row adapters cannot be used with DoRA (as in PEFT)",
        );
      return variant.delta(this.parts(name), xd);
    }
    // Scaling the r-wide A·x instead of the product costs r/out of the work (and the same
    // in backward); the result differs from PEFT's order only in float32 rounding.
    return linear(scale === 1 ? linear(xd, A) : mul(linear(xd, A), scale), B);
  }

  /** ΔW = s·B·A as [out, in], float32. */
  private deltaOutIn(name: string): Tensor {
    const { A, B } = this.factors(name);
    return mul(matmul(B.to("float32"), A.to("float32")), this.scaling(name));
  }

  deltaWeight(name: string): Tensor {
    return this.toStoredLayout(this.deltaOutIn(name));
  }

  // A variant merges as [out, in]; toStoredLayout turns the stored layout to it and back.
  protected override mergedWeight(name: string, w32: Tensor): Tensor {
    const v = this.variants.get(name);
    if (v === undefined) return super.mergedWeight(name, w32);
    const merged = v.merged(this.parts(name), this.toStoredLayout(w32), this.deltaOutIn(name));
    return this.toStoredLayout(merged);
  }

  protected override unmergedWeight(name: string, w32: Tensor): Tensor {
    const v = this.variants.get(name);
    if (v === undefined) return super.unmergedWeight(name, w32);
    const w = v.unmerged(this.parts(name), this.toStoredLayout(w32), this.deltaOutIn(name));
    return this.toStoredLayout(w);
  }
}
