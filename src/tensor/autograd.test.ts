import { describe, expect, it } from "vitest";
import { AutogradError, DTypeError, ValueError } from "../errors.js";
import { randn } from "./creation.js";
import * as ops from "./ops/index.js";
import { autocast, enableGrad, getAutocastDType, isGradEnabled, noGrad } from "./state.js";
import { Tensor } from "./tensor.js";

const f64 = (values: number[], shape = [values.length]) => Tensor.from(values, shape, "float64");

describe("autograd engine", () => {
  it("accumulates gradients over uses and over backward calls", () => {
    const x = f64([1, 2, 3]).requiresGrad_();
    // y = sum(x*x + x): dy/dx = 2x + 1.
    ops.sum(ops.add(ops.mul(x, x), x)).backward();
    expect(x.grad!.toArray()).toEqual([3, 5, 7]);
    ops.sum(ops.mul(x, 2)).backward();
    expect(x.grad!.toArray()).toEqual([5, 7, 9]);
  });

  it("handles diamonds: a value used along two paths gets both contributions once", () => {
    const x = f64([2]).requiresGrad_();
    const a = ops.mul(x, 3);
    const b = ops.add(a, ops.mul(a, a)); // b = 3x + 9x^2, db/dx = 3 + 18x
    b.backward();
    expect(x.grad!.toArray()).toEqual([39]);
  });

  it("gives frozen tensors no gradient and never asks for one", () => {
    const w = randn([3, 3], { dtype: "float64" });
    const x = randn([3], { dtype: "float64" }).requiresGrad_();
    let asked: readonly boolean[] = [];
    const y = ops.mul(w, x);
    const fn = y.gradFn!;
    const inner = fn.backward!;
    fn.backward = (dy, needs) => {
      asked = needs;
      return inner(dy, needs);
    };
    ops.sum(y).backward();
    expect(asked).toEqual([false, true]);
    expect(w.grad).toBeNull();
    expect(x.grad).not.toBeNull();
  });

  it("keeps gradients of 16-bit leaves in their dtype", () => {
    const w = randn([4], { dtype: "bfloat16", seed: 1 }).requiresGrad_();
    ops.sum(ops.mul(ops.cast(w, "float32"), 2)).backward();
    expect(w.grad!.dtype).toBe("bfloat16");
    expect(w.grad!.toArray()).toEqual([2, 2, 2, 2]);
  });

  it("gives each leaf its own gradient storage", () => {
    const a = f64([1]).requiresGrad_();
    const b = f64([2]).requiresGrad_();
    ops.add(a, b).backward();
    expect(a.grad!.data).not.toBe(b.grad!.data);
  });

  it("detach and noGrad cut the graph", () => {
    const x = f64([1, 2]).requiresGrad_();
    expect(ops.mul(x.detach(), 2).requiresGrad).toBe(false);
    const y = noGrad(() => ops.mul(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(isGradEnabled()).toBe(true);
    expect(noGrad(() => enableGrad(() => ops.mul(x, 2))).requiresGrad).toBe(true);
  });

  it("retainGrad keeps a non-leaf gradient", () => {
    const x = f64([1, 2]).requiresGrad_();
    const h = ops.mul(x, 3).retainGrad();
    ops.sum(ops.mul(h, h)).backward();
    expect(h.grad!.toArray()).toEqual([6, 12]);
    expect(x.grad!.toArray()).toEqual([18, 36]);
  });

  it("frees the graph after backward unless asked to keep it", () => {
    const x = f64([1]).requiresGrad_();
    const y = ops.mul(ops.mul(x, x), 1);
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expect(x.grad!.toArray()).toEqual([4]);
    expect(() => y.backward()).toThrow(/already freed/);
  });

  it("explains misuse with typed errors", () => {
    expect(() => f64([1]).backward()).toThrow(AutogradError);
    const x = f64([1, 2]).requiresGrad_();
    expect(() => ops.mul(x, 2).backward()).toThrow(/one-element tensor; got shape \[2\]/);
    expect(() => ops.mul(x, 2).backward(f64([1, 2, 3]))).toThrow(
      /gradient shape \[3\] does not match tensor shape \[2\]/,
    );
    expect(() => Tensor.from([1], [1], "int64").requiresGrad_()).toThrow(DTypeError);
    expect(() => ops.mul(x, 2).requiresGrad_()).toThrow(ValueError);
  });

  it("takes an explicit gradient for non-scalar outputs", () => {
    const x = f64([1, 2]).requiresGrad_();
    ops.mul(x, x).backward(f64([1, 10]));
    expect(x.grad!.toArray()).toEqual([2, 40]);
  });
});

describe("autocast state", () => {
  it("is scoped to the callback and restored after errors", () => {
    expect(getAutocastDType()).toBeNull();
    expect(autocast("bfloat16", () => getAutocastDType())).toBe("bfloat16");
    expect(() =>
      autocast("float16", () => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(getAutocastDType()).toBeNull();
  });

  it("rejects unknown dtypes and asynchronous callbacks", () => {
    expect(() => autocast("int8" as "bfloat16", () => 0)).toThrow(/expected dtype/);
    expect(() => noGrad(async () => 0)).toThrow(/synchronous code only/);
    expect(isGradEnabled()).toBe(true);
  });
});
