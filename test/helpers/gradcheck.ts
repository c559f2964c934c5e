import { expect } from "vitest";
import { Generator } from "../../src/tensor/random.js";
import { noGrad } from "../../src/tensor/state.js";
import { Tensor } from "../../src/tensor/tensor.js";

export interface GradcheckOptions {
  /** Finite-difference step. */
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Seed for the random cotangent the output is projected on. */
  seed?: number;
}

/**
 * Checks the analytic gradient of fn against float64 central finite differences.
 * Every input that requiresGrad must be float64. The output is reduced to a scalar by a
 * random projection L = sum(fn(x) * v), so every output element's gradient is exercised.
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradcheckOptions = {},
): void {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-6;
  const rtol = options.rtol ?? 1e-5;
  for (const t of inputs) {
    if (t.requiresGrad && t.dtype !== "float64") {
      throw new Error(`gradcheck: inputs that require grad must be float64, got ${t.dtype}`);
    }
  }
  const out = fn(...inputs);
  expect(out.dtype).toBe("float64");
  const g = new Generator(options.seed ?? 1234);
  const v = new Float64Array(out.size);
  for (let i = 0; i < v.length; i++) v[i] = g.nextNormal();
  const cotangent = new Tensor(v, out.shape, "float64");
  for (const t of inputs) t.grad = null;
  out.backward(cotangent);

  const project = (): number => {
    const o = noGrad(() => fn(...inputs)).data as Float64Array;
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * v[i];
    return s;
  };

  inputs.forEach((t, which) => {
    if (!t.requiresGrad) return;
    expect(t.grad, `input ${which} got no gradient`).not.toBeNull();
    const analytic = t.grad!.data as Float64Array;
    const x = t.data as Float64Array;
    for (let i = 0; i < x.length; i++) {
      const orig = x[i];
      x[i] = orig + eps;
      const plus = project();
      x[i] = orig - eps;
      const minus = project();
      x[i] = orig;
      const numeric = (plus - minus) / (2 * eps);
      const err = Math.abs(analytic[i] - numeric);
      if (err > atol + rtol * Math.abs(numeric)) {
        expect.fail(
          `gradient of input ${which} (shape [${t.shape.join(", ")}]) at flat index ${i}: analytic ${analytic[i]}, numeric ${numeric}, |diff| ${err}`,
        );
      }
    }
  });
}

/** A float64 leaf tensor of normal values that requires grad. */
export function param(shape: number[], seed: number, scale = 1): Tensor {
  const g = new Generator(seed);
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = g.nextNormal() * scale;
  return new Tensor(data, shape, "float64", true);
}

/** Random small shapes for property-style checks; includes size-1 axes. */
export function randomShape(g: Generator, ndim: number, maxSize = 4): number[] {
  return Array.from({ length: ndim }, () => 1 + (g.nextUint32() % maxSize));
}
