import { afterEach, describe, expect, it, vi } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { maxAbsDiff, values } from "../../../test/helpers/naive.js";
import type { FloatDType } from "../../backend/dtype.js";
import { getBackend } from "../../backend/registry.js";
import { AutogradError, IndexError, ShapeError, ValueError } from "../../errors.js";
import { autocast, noGrad } from "../state.js";
import { markWritten } from "../storage-version.js";
import { Tensor } from "../tensor.js";
import { cast, mul } from "./elementwise.js";
import { linearCrossEntropy } from "./linear-cross-entropy.js";
import { crossEntropy } from "./loss.js";
import { linear } from "./matmul.js";

const CLASSES = 7;
const FEATURES = 5;

/** Targets for `rows` rows with every third ignored (-100). */
function targets(rows: number, shape: number[] = [rows]): Tensor {
  const t = Int32Array.from({ length: rows }, (_, i) => (i % 3 === 2 ? -100 : (i * 5) % CLASSES));
  return new Tensor(t, shape, "int32");
}

/**
 * Leaves of one dtype: x [2, rows/2, F] (or [rows, F]), weight [C, F], bias [C]; a frozen
 * head's weight and bias need no gradient (the forward pass then takes the input's).
 */
function leaves(dtype: FloatDType, rows: number, seed = 1, frozen = false) {
  const as = (t: Tensor, trained = true) =>
    new Tensor(cast(t, dtype).data, t.shape, dtype, trained);
  const shape = rows % 2 === 0 ? [2, rows / 2, FEATURES] : [rows, FEATURES];
  return {
    x: as(param(shape, seed)),
    w: as(param([CLASSES, FEATURES], seed + 1, 0.7), !frozen),
    b: as(param([CLASSES], seed + 2, 0.3), !frozen),
  };
}

type Leaves = ReturnType<typeof leaves>;

/** Loss and the gradients of the leaves that need one after backward of loss * upstream. */
function run(l: Leaves, loss: (l: Leaves) => Tensor, upstream: number) {
  const value = loss(l);
  mul(value, upstream).backward();
  const trained = [l.x, l.w, l.b].filter((t) => t.requiresGrad);
  return { value, grads: trained.map((t) => t.grad!) };
}

describe("linearCrossEntropy", () => {
  afterEach(() => vi.restoreAllMocks());

  // 2 rows per chunk of 15 logits: 9 rows give 5 chunks, the last one short.
  const chunked = { chunkElements: 15 };

  it.each([
    ["mean", 9, 1, false],
    ["mean", 10, 3.5, false],
    ["sum", 9, -0.25, false],
    ["mean", 10, 3.5, true],
    ["sum", 9, -0.25, true],
  ] as const)(
    "equals crossEntropy(linear(...)) in float64 (%s over %i rows, upstream %f, frozen head %s)",
    (reduction, rows, upstream, frozen) => {
      const fused = run(
        leaves("float64", rows, 1, frozen),
        (l) =>
          linearCrossEntropy(l.x, l.w, l.b, targets(rows, l.x.shape.slice(0, -1)), {
            ...chunked,
            reduction,
            dtype: "float64",
          }),
        upstream,
      );
      const plain = run(
        leaves("float64", rows, 1, frozen),
        (l) =>
          crossEntropy(linear(l.x, l.w, l.b), targets(rows, l.x.shape.slice(0, -1)), {
            reduction,
            dtype: "float64",
          }),
        upstream,
      );
      expect(fused.value.dtype).toBe("float64");
      expect(fused.grads).toHaveLength(frozen ? 1 : 3);
      expect(
        Math.abs((fused.value.item() as number) - (plain.value.item() as number)),
      ).toBeLessThan(1e-12);
      fused.grads.forEach((g, i) => {
        expect(g.shape).toEqual(plain.grads[i].shape);
        expect(maxAbsDiff(values(g), values(plain.grads[i]))).toBeLessThan(1e-12);
      });
    },
  );

  it("has the gradients of finite differences", () => {
    const { x, w, b } = leaves("float64", 6);
    const t = targets(6, [2, 3]);
    gradcheck(
      (x, w, b) => linearCrossEntropy(x, w, b, t, { ...chunked, dtype: "float64" }),
      [x, w, b],
    );
  });

  // Each chunk runs the unfused ops, so 16-bit rounding (of the logits, and of their
  // gradient from the true upstream value: a float16 loss scale) is the same. A frozen
  // head's input gradient is taken in the forward pass for an upstream gradient of 1 and
  // scaled, except with float16 (whose gradient would underflow without the loss scale).
  it.each([
    ["float32", null, 1, false],
    ["bfloat16", null, 1 / 3, false],
    ["float32", "bfloat16", 1, false],
    ["float32", "float16", 65536, false],
    ["float16", "float16", 1024, false],
    ["float32", null, 0.75, true],
    ["bfloat16", null, 1 / 3, true],
    ["float32", "bfloat16", 1 / 3, true],
    ["float32", "float16", 65536, true],
    ["float16", null, 1024, true],
  ] as const)(
    "matches the unfused ops for %s leaves under autocast %s (upstream %f, frozen head %s)",
    (dtype, auto, upstream, frozen) => {
      const rows = 9;
      const within = (f: () => Tensor) => (auto === null ? f() : autocast(auto, f));
      const fused = run(
        leaves(dtype, rows, 1, frozen),
        (l) => within(() => linearCrossEntropy(l.x, l.w, l.b, targets(rows), chunked)),
        upstream,
      );
      const plain = run(
        leaves(dtype, rows, 1, frozen),
        (l) =>
          within(() => crossEntropy(linear(l.x, l.w, l.b), targets(rows), { dtype: "float32" })),
        upstream,
      );
      expect(fused.value.dtype).toBe("float32");
      expect(fused.value.item()).toBeCloseTo(plain.value.item() as number, 6);
      const tol = dtype === "float32" && auto === null ? 1e-6 : 1e-2;
      fused.grads.forEach((g, i) => {
        expect(g.dtype).toBe(dtype);
        const ref = values(plain.grads[i]);
        const scale = Math.max(...ref.map(Math.abs));
        expect(maxAbsDiff(values(g), ref) / scale).toBeLessThan(tol);
      });
    },
  );

  /** Rows of each crossEntropy and crossEntropyGrad call the backend gets, in order. */
  function spyRows(): number[] {
    const backend = getBackend();
    const rowsSeen: number[] = [];
    const forward = backend.crossEntropy.bind(backend);
    const backward = backend.crossEntropyGrad.bind(backend);
    vi.spyOn(backend, "crossEntropy").mockImplementation((...a) => {
      rowsSeen.push(a[2]);
      return forward(...a);
    });
    vi.spyOn(backend, "crossEntropyGrad").mockImplementation((...a) => {
      rowsSeen.push(a[4]);
      return backward(...a);
    });
    return rowsSeen;
  }

  it("never asks the backend for more than a chunk of logits", () => {
    const rowsSeen = spyRows();
    const { x, w, b } = leaves("float32", 9);
    linearCrossEntropy(x, w, b, targets(9), chunked).backward();
    // The forward pass, then the backward pass's own forward and gradient, chunk by chunk.
    expect(rowsSeen).toEqual([2, 2, 2, 2, 1, ...[2, 2, 2, 2, 2, 2, 2, 2, 1, 1]]);
  });

  it("takes a frozen head's input gradient in the forward pass, once per chunk", () => {
    const rowsSeen = spyRows();
    const { x, w, b } = leaves("float32", 9, 1, true);
    const loss = linearCrossEntropy(x, w, b, targets(9), chunked);
    // Each chunk's loss, then its gradient; the backward pass computes no logits.
    expect(rowsSeen).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 1, 1]);
    loss.backward();
    expect(rowsSeen).toHaveLength(10);
    // Under noGrad, or with no input needing a gradient, the forward computes only losses.
    rowsSeen.length = 0;
    noGrad(() => linearCrossEntropy(x, w, b, targets(9), chunked));
    linearCrossEntropy(x.detach(), w, b, targets(9), chunked);
    expect(rowsSeen).toEqual([2, 2, 2, 2, 1, 2, 2, 2, 2, 1]);
    // float16 computes the logits again in the backward pass, from the true upstream
    // gradient, as a trained head does.
    rowsSeen.length = 0;
    const half = leaves("float16", 9, 1, true);
    linearCrossEntropy(half.x, half.w, half.b, targets(9), chunked).backward();
    const f16Loss = autocast("float16", () => linearCrossEntropy(x, w, b, targets(9), chunked));
    f16Loss.backward();
    const recompute = [2, 2, 2, 2, 1, ...[2, 2, 2, 2, 2, 2, 2, 2, 1, 1]];
    expect(rowsSeen).toEqual([...recompute, ...recompute]);
  });

  it("gives a frozen weight no gradient and finds the input's", () => {
    const { x, w } = leaves("float32", 9);
    const frozen = w.detach();
    linearCrossEntropy(x, frozen, null, targets(9), chunked).backward();
    expect(frozen.grad).toBeNull();
    expect(x.grad!.shape).toEqual(x.shape);
  });

  it("gives NaN over no counted targets, as crossEntropy does, and a gradient of no rows", () => {
    const x = new Tensor(new Float32Array(0), [0, FEATURES], "float32", true);
    const { w } = leaves("float32", 2);
    const loss = linearCrossEntropy(x, w, null, new Tensor(new Int32Array(0), [0], "int32"));
    expect(loss.item()).toBeNaN();
    expect(
      crossEntropy(linear(x, w), new Tensor(new Int32Array(0), [0], "int32")).item(),
    ).toBeNaN();
    loss.backward();
    expect(x.grad!.shape).toEqual([0, FEATURES]);
  });

  it("rejects what it cannot compute, saying what it expected", () => {
    const { x, w, b } = leaves("float32", 9);
    expect(() => linearCrossEntropy(x, w, b, targets(8))).toThrow(ShapeError);
    expect(() => linearCrossEntropy(x, w, b, targets(8))).toThrow(/expected \[9\]/);
    expect(() => linearCrossEntropy(x, b, null, targets(9))).toThrow(ShapeError);
    const wrong = new Tensor(
      Int32Array.from({ length: 9 }, () => CLASSES),
      [9],
      "int32",
    );
    expect(() => linearCrossEntropy(x, w, b, wrong)).toThrow(IndexError);
    expect(() => linearCrossEntropy(x, w, b, targets(9), { reduction: "none" as "sum" })).toThrow(
      ValueError,
    );
  });

  it("refuses a backward pass after its weight was written in place", () => {
    const { x, w } = leaves("float32", 9);
    const loss = linearCrossEntropy(x, w, null, targets(9), chunked);
    (w.data as Float32Array)[0] += 1;
    markWritten(w.data);
    expect(() => loss.backward()).toThrow(AutogradError);
  });

  it("gives a frozen head's input the gradient at the forward pass's weight", () => {
    const { x, w } = leaves("float32", 9, 1, true);
    const loss = linearCrossEntropy(x, w, null, targets(9), chunked);
    const before = w.detach().clone();
    (w.data as Float32Array)[0] += 1;
    markWritten(w.data);
    loss.backward();
    const x2 = x.detach().requiresGrad_();
    crossEntropy(linear(x2, before), targets(9)).backward();
    expect(maxAbsDiff(values(x.grad!), values(x2.grad!))).toBeLessThan(1e-6);
  });
});
