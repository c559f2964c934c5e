import { ValueError } from "../../errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import { Optimizer } from "./optimizer.js";

export interface AdamWOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

interface AdamWState {
  step: number;
  /** First and second moments, float32 (widened for 16-bit parameters). */
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

const f = Math.fround;

/**
 * AdamW with PyTorch's arithmetic (torch.optim.AdamW, single-tensor path): decoupled weight
 * decay, bias correction, and every elementwise step rounded to float32 in PyTorch's
 * order, so float32 parameters follow PyTorch's trajectory to the last bits.
 * Defaults as PyTorch: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2.
 */
export class AdamW extends Optimizer<AdamWOptions, AdamWState> {
  constructor(
    params: Tensor[] | { params: Tensor[]; options?: Partial<AdamWOptions> }[],
    options: Partial<AdamWOptions> = {},
  ) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, ...options });
    for (const g of this.groups) {
      const [b1, b2] = g.options.betas;
      if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
        throw new ValueError(`AdamW: betas must be in [0, 1), got [${b1}, ${b2}]`);
      if (!(g.options.eps >= 0))
        throw new ValueError(`AdamW: eps must be >= 0, got ${g.options.eps}`);
    }
  }

  step(): void {
    for (const { params, options } of this.groups) {
      const { lr, eps, weightDecay } = options;
      const [beta1, beta2] = options.betas;
      for (const p of params) {
        if (p.grad === null) continue;
        const grad = p.grad.toFloat32Array();
        const value = p.toFloat32Array();
        let s = this.state.get(p);
        if (s === undefined) {
          s = { step: 0, expAvg: new Float32Array(p.size), expAvgSq: new Float32Array(p.size) };
          this.state.set(p, s);
        }
        s.step += 1;
        const decay = f(1 - lr * weightDecay);
        const oneMinusB1 = f(1 - beta1);
        const oneMinusB2 = f(1 - beta2);
        const b1 = f(beta1);
        const b2 = f(beta2);
        const bias1 = 1 - beta1 ** s.step;
        const bias2Sqrt = f(Math.sqrt(1 - beta2 ** s.step));
        const stepSize = f(lr / bias1);
        const epsF = f(eps);
        const { expAvg, expAvgSq } = s;
        for (let i = 0; i < value.length; i++) {
          const g = grad[i];
          const w = f(value[i] * decay);
          expAvg[i] = f(f(expAvg[i] * b1) + f(g * oneMinusB1));
          expAvgSq[i] = f(f(expAvgSq[i] * b2) + f(f(g * g) * oneMinusB2));
          const denom = f(f(f(Math.sqrt(expAvgSq[i])) / bias2Sqrt) + epsF);
          value[i] = f(w + f(-stepSize * f(expAvg[i] / denom)));
        }
        this.writeBack(p, value);
      }
    }
  }

  /** The optimizer state for checkpoints: per parameter index, step and moments. */
  stateDict(): { step: number; expAvg: Float32Array; expAvgSq: Float32Array }[][] {
    return this.groups.map((g) =>
      g.params.map((p) => {
        const s = this.state.get(p);
        return s === undefined
          ? { step: 0, expAvg: new Float32Array(p.size), expAvgSq: new Float32Array(p.size) }
          : { ...s };
      }),
    );
  }

  loadStateDict(state: { step: number; expAvg: Float32Array; expAvgSq: Float32Array }[][]): void {
    if (state.length !== this.groups.length)
      throw new ValueError(
        `AdamW.loadStateDict: expected ${this.groups.length} groups, got ${state.length}`,
      );
    this.groups.forEach((g, gi) => {
      if (state[gi].length !== g.params.length)
        throw new ValueError(
          `AdamW.loadStateDict: group ${gi} has ${g.params.length} parameters, the state ${state[gi].length}`,
        );
      g.params.forEach((p, i) => {
        const s = state[gi][i];
        if (s.expAvg.length !== p.size || s.expAvgSq.length !== p.size)
          throw new ValueError(
            `AdamW.loadStateDict: state of parameter ${i} in group ${gi} has the wrong size`,
          );
        this.state.set(p, {
          step: s.step,
          expAvg: Float32Array.from(s.expAvg),
          expAvgSq: Float32Array.from(s.expAvgSq),
        });
      });
    });
  }
}
