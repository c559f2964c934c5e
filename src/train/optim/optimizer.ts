import { isFloat } from "../../backend/dtype.js";
import { DTypeError, ValueError } from "../../errors.js";
import { overwrite } from "../../tensor/storage-version.js";
import { Tensor } from "../../tensor/tensor.js";

export interface ParamGroup<H> {
  params: Tensor[];
  options: H;
}

/** Shared bookkeeping of optimizers: parameter groups, per-parameter state, zeroGrad. */
export abstract class Optimizer<H extends { lr: number }, S> {
  readonly groups: ParamGroup<H>[];
  protected readonly state = new Map<Tensor, S>();

  constructor(params: Tensor[] | { params: Tensor[]; options?: Partial<H> }[], defaults: H) {
    const groups =
      params.length > 0 && "params" in (params[0] as object)
        ? (params as { params: Tensor[]; options?: Partial<H> }[])
        : [{ params: params as Tensor[] }];
    this.groups = groups.map((g) => ({
      params: g.params,
      options: { ...defaults, ...(g.options ?? {}) },
    }));
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!isFloat(p.dtype))
          throw new DTypeError("optimizer", `parameters must be floating tensors, got ${p.dtype}`);
      }
      if (!(g.options.lr >= 0))
        throw new ValueError(`optimizer: lr must be >= 0, got ${g.options.lr}`);
    }
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad = null;
  }

  /** Sets the learning rate of every group (schedulers call this). */
  setLearningRate(lr: number): void {
    for (const g of this.groups) g.options.lr = lr;
  }

  abstract step(): void;

  /** Writes updated float32 values into a parameter in place, rounded to its dtype. */
  protected writeBack(p: Tensor, values: Float32Array): void {
    const updated = Tensor.from(values, p.shape, p.dtype);
    overwrite(p.data, updated.data);
  }

  /** Per group, per parameter: step count and moment buffers (for checkpoints). */
  abstract stateDict(): { step: number; expAvg: Float32Array; expAvgSq: Float32Array }[][];
  abstract loadStateDict(
    state: { step: number; expAvg: Float32Array; expAvgSq: Float32Array }[][],
  ): void;
}
