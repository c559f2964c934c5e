import type { FloatDType } from "../backend/dtype.js";
import { uniform, zeros } from "../tensor/creation.js";
import { dropout } from "../tensor/ops/dropout.js";
import { add, cast } from "../tensor/ops/elementwise.js";
import { embedding } from "../tensor/ops/indexing.js";
import { linear, matmul } from "../tensor/ops/matmul.js";
import { layerNorm, rmsNorm } from "../tensor/ops/norm.js";
import type { Generator } from "../tensor/random.js";
import type { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

export interface InitOptions {
  dtype?: FloatDType;
  /**
   * "default": PyTorch's initialisation; "zeros": no random draws, for modules whose
   * weights are about to be loaded from a file.
   */
  init?: "default" | "zeros";
  generator?: Generator;
}

/** A trainable leaf of the given shape, initialised as `init` says. */
function parameter(shape: number[], bound: number, o: InitOptions): Tensor {
  const t =
    o.init === "zeros"
      ? zeros(shape, { dtype: o.dtype })
      : uniform(shape, -bound, bound, { dtype: o.dtype, generator: o.generator });
  return t.requiresGrad_();
}

/** y = x Wᵀ + b with weight [out, in]. PyTorch's init: kaiming-uniform(a=√5), i.e. U(±1/√in). */
export class Linear extends Module {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: InitOptions & { bias?: boolean } = {},
  ) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.registerParameter("weight", parameter([outFeatures, inFeatures], bound, options));
    this.registerParameter(
      "bias",
      options.bias === false ? null : parameter([outFeatures], bound, options),
    );
  }

  get weight(): Tensor {
    return this.tensor("weight");
  }

  get bias(): Tensor | null {
    return this.optionalTensor("bias");
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias, { name: this.path });
  }
}

/** GPT-2's Conv1D: a linear layer whose weight is stored transposed, [in, out]; y = x W + b. */
export class Conv1D extends Module {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: InitOptions = {},
  ) {
    super();
    this.registerParameter("weight", parameter([inFeatures, outFeatures], 0.02, options));
    this.registerParameter("bias", zeros([outFeatures], { dtype: options.dtype }).requiresGrad_());
  }

  get weight(): Tensor {
    return this.tensor("weight");
  }

  get bias(): Tensor {
    return this.tensor("bias");
  }

  forward(x: Tensor): Tensor {
    return add(matmul(x, this.weight), this.bias);
  }
}

export class Embedding extends Module {
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    options: InitOptions = {},
  ) {
    super();
    this.registerParameter("weight", parameter([numEmbeddings, dim], 1, options));
  }

  get weight(): Tensor {
    return this.tensor("weight");
  }

  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

export class LayerNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    options: { dtype?: FloatDType } = {},
  ) {
    super();
    this.registerParameter("weight", zeros([dim], options).add(1).requiresGrad_());
    this.registerParameter("bias", zeros([dim], options).requiresGrad_());
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.tensor("weight"), this.tensor("bias"), this.eps);
  }
}

/** Llama's RMSNorm (weight only). */
export class RMSNorm extends Module {
  /** Gemma's norm: scales by (1 + weight), the weight starting at 0, all in float32. */
  readonly plusOne: boolean;

  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    options: { dtype?: FloatDType; plusOne?: boolean } = {},
  ) {
    super();
    this.plusOne = options.plusOne ?? false;
    const w = zeros([dim], options);
    this.registerParameter("weight", (this.plusOne ? w : w.add(1)).requiresGrad_());
  }

  forward(x: Tensor): Tensor {
    const w = this.tensor("weight");
    if (!this.plusOne) return rmsNorm(x, w, this.eps);
    const scale = add(cast(w, "float32"), 1);
    return cast(rmsNorm(cast(x, "float32"), scale, this.eps), x.dtype);
  }
}

export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
  }

  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? dropout(x, this.p) : x;
  }
}

/** Children named "0", "1", ... as torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  constructor(items: M[]) {
    super();
    items.forEach((m, i) => this.registerModule(String(i), m));
  }

  /** The current children (read each time, so replaced children are seen). */
  get items(): M[] {
    return this.namedChildren().map(([, m]) => m as M);
  }
}
