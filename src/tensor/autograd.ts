import { AutogradError } from "../errors.js";
import { isGradEnabled, noGrad } from "./state.js";
import type { Tensor } from "./tensor.js";

/**
 * Reverse-mode autograd. Each op output that needs a gradient holds a GradFn: its inputs
 * and a closure from the output's gradient to the inputs' gradients. The closure is told
 * which inputs need one, so frozen weights never get a gradient computed or stored.
 */
export type BackwardFn = (
  dy: Tensor,
  needs: readonly boolean[],
) => readonly (Tensor | null | undefined)[];

export class GradFn {
  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    readonly needs: readonly boolean[],
    public backward: BackwardFn | null,
  ) {}
}

/**
 * Attaches a GradFn to `out` when grad mode is on and some input requires a gradient.
 * Returns `out`. The engine itself sums broadcast gradients down to each input's shape
 * and casts them to each input's dtype, so backward closures may return gradients in
 * the op's own (broadcast, promoted) shape and dtype.
 */
export function record(
  out: Tensor,
  name: string,
  inputs: readonly Tensor[],
  backward: BackwardFn,
): Tensor {
  if (!isGradEnabled()) return out;
  const needs = inputs.map((t) => t.requiresGrad);
  if (!needs.some(Boolean)) return out;
  out.requiresGrad = true;
  out.gradFn = new GradFn(name, inputs, needs, backward);
  return out;
}

interface Conform {
  sumTo(g: Tensor, shape: readonly number[]): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
  cast(g: Tensor, like: Tensor): Tensor;
  clone(g: Tensor): Tensor;
  onesLike(t: Tensor): Tensor;
}

let conform: Conform | null = null;

/** Installed by the ops module, which autograd cannot import without a cycle. */
export function installConform(c: Conform): void {
  conform = c;
}

export function runBackward(
  root: Tensor,
  gradient: Tensor | undefined,
  retainGraph: boolean,
): void {
  const c = conform!;
  if (!root.requiresGrad) {
    throw new AutogradError(
      "backward: the tensor does not require grad (no input of the computation had requiresGrad set, or it ran inside noGrad)",
    );
  }
  if (gradient === undefined && root.size !== 1) {
    throw new AutogradError(
      `backward: a gradient can be implied only for a one-element tensor; got shape [${root.shape.join(", ")}], pass the gradient explicitly`,
    );
  }
  if (gradient !== undefined && !sameShape(gradient.shape, root.shape)) {
    throw new AutogradError(
      `backward: gradient shape [${gradient.shape.join(", ")}] does not match tensor shape [${root.shape.join(", ")}]`,
    );
  }
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    grads.set(root, gradient ? c.cast(gradient, root) : c.onesLike(root));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (g === undefined) continue;
      grads.delete(t);
      const fn = t.gradFn;
      if (fn === null || t.retainsGrad) {
        t.grad = t.grad === null ? c.clone(g) : c.add(t.grad, g);
        if (fn === null) continue;
      }
      if (fn.backward === null) {
        throw new AutogradError(
          `backward: the graph through ${fn.name} was already freed by an earlier backward; pass retainGraph: true to the first call to backward twice`,
        );
      }
      const inputGrads = fn.backward(g, fn.needs);
      if (!retainGraph) fn.backward = null;
      for (let j = 0; j < fn.inputs.length; j++) {
        const gi = inputGrads[j];
        if (!fn.needs[j] || gi === null || gi === undefined) continue;
        const input = fn.inputs[j];
        const fitted = c.cast(c.sumTo(gi, input.shape), input);
        const prev = grads.get(input);
        grads.set(input, prev === undefined ? fitted : c.add(prev, fitted));
      }
    }
  });
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const child = inputs[next];
      if (child.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
