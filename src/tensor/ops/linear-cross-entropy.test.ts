import { afterEach, describe, expect, it, vi } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { maxAbsDiff, values } from "../../../test/helpers/naive.js";
import type { FloatDType } from "../../backend/dtype.js";
import { getBackend } from "../../backend/registry.js";
import { AutogradError, IndexError, ShapeError, ValueError } from "../../errors.js";
import { autocast } from "../state.js";
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

/** Leaves of one dtype: x [2, rows/2, F] (or [rows, F]), weight [C, F], bias [C]. */
function leaves(dtype: FloatDType, rows: number, seed = 1) {
  const as = (t: Tensor) => new Tensor(cast(t, dtype).data, t.shape, dtype, true);
  const shape = rows % 2 === 0 ? [2, rows / 2, FEATURES] : [rows, FEATURES];
  return {
    x: as(param(shape, seed)),
    w: as(param([CLASSES, FEATURES], seed + 1, 0.7)),
    b: as(param([CLASSES], seed + 2, 0.3)),
  };
}

type Leaves = ReturnType<typeof leaves>;

/** Loss and gradients of x, w, b after backward of loss * upstream. */
function run(l: Leaves, loss: (l: Leaves) => Tensor, upstream: number) {
  const value = loss(l);
  mul(value, upstream).backward();
  return { value, grads: [l.x.grad!, l.w.grad!, l.b.grad!] };
}

describe("linearCrossEntropy", () => {
  afterEach(() => vi.restoreAllMocks());

  // 2 rows per chunk of 15 logits: 9 rows give 5 chunks, the last one short.
  const chunked = { chunkElements: 15 };

  it.each([
    ["mean", 9, 1],
    ["mean", 10, 3.5],
    ["sum", 9, -0.25],
  ] as const)(
    "equals crossEntropy(linear(...)) in float64 (%s over %i rows, upstream %f)",
    (reduction, rows, upstream) => {
      const fused = run(
        leaves("float64", rows),
        (l) =>
          linearCrossEntropy(l.x, l.w, l.b, targets(rows, l.x.shape.slice(0, -1)), {
            ...chunked,
            reduction,
            dtype: "float64",
          }),
        upstream,
      );
      const plain = run(
        leaves("float64", rows),
        (l) =>
          crossEntropy(linear(l.x, l.w, l.b), targets(rows, l.x.shape.slice(0, -1)), {
            reduction,
            dtype: "float64",
          }),
        upstream,
      );
      expect(fused.value.dtype).toBe("float64");
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
  // gradient from the true upstream value: a float16 loss scale) is the same.
  it.each([
    ["float32", null, 1],
    ["bfloat16", null, 1 / 3],
    ["float32", "bfloat16", 1],
    ["float32", "float16", 65536],
    ["float16", "float16", 1024],
  ] as const)(
    "matches the unfused ops for %s leaves under autocast %s (upstream %f)",
    (dtype, auto, upstream) => {
      const rows = 9;
      const within = (f: () => Tensor) => (auto === null ? f() : autocast(auto, f));
      const fused = run(
        leaves(dtype, rows),
        (l) => within(() => linearCrossEntropy(l.x, l.w, l.b, targets(rows), chunked)),
        upstream,
      );
      const plain = run(
        leaves(dtype, rows),
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

  it("never asks the backend for more than a chunk of logits", () => {
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
    const { x, w, b } = leaves("float32", 9);
    linearCrossEntropy(x, w, b, targets(9), chunked).backward();
    // The forward pass, then the backward pass's own forward and gradient, chunk by chunk.
    expect(rowsSeen).toEqual([2, 2, 2, 2, 1, ...[2, 2, 2, 2, 2, 2, 2, 2, 1, 1]]);
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
    const frozen = w.detach();
    const loss = linearCrossEntropy(x, frozen, null, targets(9), chunked);
    (frozen.data as Float32Array)[0] += 1;
    markWritten(frozen.data);
    expect(() => loss.backward()).toThrow(AutogradError);
  });
});
