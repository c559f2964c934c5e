import { ValueError } from "../../errors.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { MomentState } from "../checkpoint-files.js";
import { Optimizer } from "./optimizer.js";

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

const f = Math.fround;

/**
 * SGD with momentum, PyTorch's arithmetic in float32: g += wd·p; buf = g on the first
 * step, else momentum·buf + (1 - dampening)·g; nesterov uses g + momentum·buf; p -= lr·update.
 */
export class SGD extends Optimizer<SGDOptions, MomentState> {
  constructor(
    params: Tensor[] | { params: Tensor[]; options?: Partial<SGDOptions> }[],
    options: Partial<SGDOptions> = {},
  ) {
    super(params, {
      lr: 1e-3,
      momentum: 0,
      dampening: 0,
      weightDecay: 0,
      nesterov: false,
      ...options,
    });
    for (const g of this.groups) {
      if (g.options.nesterov && (g.options.momentum <= 0 || g.options.dampening !== 0)) {
        throw new ValueError("SGD: nesterov needs momentum > 0 and dampening 0");
      }
    }
  }

  step(): void {
    for (const { params, options: o } of this.groups) {
      for (const p of params) {
        if (p.grad === null) continue;
        const grad = p.grad.toFloat32Array();
        const value = p.toFloat32Array();
        let s = this.state.get(p);
        const first = s === undefined;
        if (s === undefined) {
          s = { step: 0, expAvg: new Float32Array(p.size), expAvgSq: new Float32Array(0) };
          this.state.set(p, s);
        }
        s.step++;
        const buf = s.expAvg;
        for (let i = 0; i < value.length; i++) {
          let g = grad[i];
          if (o.weightDecay !== 0) g = f(g + f(o.weightDecay * value[i]));
          if (o.momentum !== 0) {
            buf[i] = first ? g : f(f(o.momentum * buf[i]) + f((1 - o.dampening) * g));
            g = o.nesterov ? f(g + f(o.momentum * buf[i])) : buf[i];
          }
          value[i] = f(value[i] - f(o.lr * g));
        }
        this.writeBack(p, value);
      }
    }
  }

  stateDict(): MomentState[][] {
    return this.groups.map((g) =>
      g.params.map(
        (p) =>
          this.state.get(p) ?? {
            step: 0,
            expAvg: new Float32Array(p.size),
            expAvgSq: new Float32Array(0),
          },
      ),
    );
  }

  loadStateDict(state: MomentState[][]): void {
    this.groups.forEach((g, gi) =>
      g.params.forEach((p, i) =>
        this.state.set(p, { ...state[gi][i], expAvg: Float32Array.from(state[gi][i].expAvg) }),
      ),
    );
  }
}
