import type { FloatDType } from "../../../backend/dtype.js";
import { ParameterDict } from "../../../nn/containers.js";
import { full, randn, zeros } from "../../../tensor/creation.js";
import { dropout } from "../../../tensor/ops/dropout.js";
import { mul } from "../../../tensor/ops/elementwise.js";
import { slice } from "../../../tensor/ops/layout.js";
import { linear, matmul } from "../../../tensor/ops/matmul.js";
import { reshape } from "../../../tensor/ops/view.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdditiveLayer, type BaseLayer } from "../adapter-layer.js";

/** The frozen random projections all VeRA layers of one adapter share: A [r, maxIn], B [maxOut, r]. */
export interface SharedProjections {
  A: Tensor;
  B: Tensor;
}

interface VeraAdapter {
  r: number;
  dropout: number;
  dtype: FloatDType;
  shared: SharedProjections;
}

/**
 * VeRA: h = W x + Λb B Λd A x with the shared projections sliced to this layer's real
 * shape (A[:, :in], B[:out, :]) and only the vectors λb [out] and λd [r] trained.
 */
export class VeraLayer extends AdditiveLayer<VeraAdapter> {
  protected readonly adapterLayerNames = ["vera_lambda_b", "vera_lambda_d"] as const;

  constructor(base: BaseLayer) {
    super(base);
    this.registerModule("vera_lambda_b", new ParameterDict());
    this.registerModule("vera_lambda_d", new ParameterDict());
  }

  private lambdas(): [ParameterDict, ParameterDict] {
    return [
      this.childModule("vera_lambda_b") as ParameterDict,
      this.childModule("vera_lambda_d") as ParameterDict,
    ];
  }

  /** λb zeros and λd = dInitial (PEFT's init_weights=true), or random λd. */
  addAdapter(
    name: string,
    r: number,
    p: number,
    dInitial: number,
    initWeights: boolean,
    dtype: FloatDType,
    shared: SharedProjections,
  ): void {
    const o = { dtype };
    const out = this.outFeatures;
    this.register(
      name,
      { r, dropout: p, dtype, shared },
      {
        vera_lambda_b: (initWeights ? zeros([out], o) : full([out], 1, o)).requiresGrad_(),
        vera_lambda_d: (initWeights ? full([r], dInitial, o) : randn([r], o)).requiresGrad_(),
      },
    );
  }

  /** This layer's slices of the shared projections, in the adapter dtype. */
  private slices(name: string): { A: Tensor; B: Tensor } {
    const a = this.adapters.get(name)!;
    return {
      A: slice(a.shared.A, 1, 0, this.inFeatures).to(a.dtype),
      B: slice(a.shared.B, 0, 0, this.outFeatures).to(a.dtype),
    };
  }

  protected delta(name: string, x: Tensor): Tensor {
    const a = this.adapters.get(name)!;
    const [lb, ld] = this.lambdas();
    const { A, B } = this.slices(name);
    const xd = this.training && a.dropout > 0 ? dropout(x, a.dropout) : x;
    return mul(lb.get(name)!, linear(mul(ld.get(name)!, linear(xd, A)), B));
  }

  deltaWeight(name: string): Tensor {
    const [lb, ld] = this.lambdas();
    const { A, B } = this.slices(name);
    const left = mul(reshape(lb.get(name)!.to("float32"), [-1, 1]), B.to("float32"));
    const right = mul(reshape(ld.get(name)!.to("float32"), [-1, 1]), A.to("float32"));
    return this.toStoredLayout(matmul(left, right));
  }
}
