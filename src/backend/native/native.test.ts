import { describe, expect, it } from "vitest";
import { randn } from "../../tensor/creation.js";
import { Generator } from "../../tensor/random.js";
import { Tensor } from "../../tensor/tensor.js";
import type { FloatDType } from "../dtype.js";
import { referenceBackend } from "../reference/index.js";
import { nativeBackend } from "./index.js";

// CI installs oneDNN and checks that the addon loads, so these run there; without the
// addon (a machine lacking libdnnl-dev) there is nothing to compare.
describe.runIf(nativeBackend !== null)("native backend against the reference backend", () => {
  const g = new Generator(5);
  const dim = () => 1 + (g.nextUint32() % 37);
  const cases = Array.from({ length: 24 }, (_, i) => {
    const [m, k, n] = [dim(), dim(), dim()];
    const batchA = i % 3 === 0 ? [2, 1] : i % 3 === 1 ? [3] : [];
    const batchB = i % 3 === 0 ? [1, 3] : i % 3 === 1 ? [] : [];
    return { m, k, n, transA: i % 2 === 1, transB: i % 4 >= 2, batchA, batchB };
  });

  it.each(["float32", "bfloat16", "float16"] as FloatDType[])(
    "matmul in %s on random odd shapes, transposes and broadcast batches",
    (dtype) => {
      for (const [i, c] of cases.entries()) {
        const aShape = [...c.batchA, ...(c.transA ? [c.k, c.m] : [c.m, c.k])];
        const bShape = [...c.batchB, ...(c.transB ? [c.n, c.k] : [c.k, c.n])];
        const a = randn(aShape, { seed: 2 * i, dtype });
        const b = randn(bShape, { seed: 2 * i + 1, dtype });
        const batch =
          c.batchA.length >= c.batchB.length
            ? c.batchA.map((d, j) => Math.max(d, c.batchB[j] ?? 1))
            : c.batchB;
        const want = new Tensor(
          referenceBackend.matmul(
            a.data,
            a.shape,
            b.data,
            b.shape,
            c.transA,
            c.transB,
            batch,
            dtype,
          ),
          [...batch, c.m, c.n],
          dtype,
        ).toFloat32Array();
        const got = new Tensor(
          nativeBackend!.matmul(a.data, a.shape, b.data, b.shape, c.transA, c.transB, batch, dtype),
          [...batch, c.m, c.n],
          dtype,
        ).toFloat32Array();
        // float32: different summation orders, ~K ulps of the row's magnitude; 16-bit: at most one ulp of the rounded output.
        const tol = dtype === "float32" ? 1e-5 : dtype === "bfloat16" ? 2 ** -7 : 2 ** -10;
        for (let j = 0; j < want.length; j++) {
          expect(Math.abs(got[j] - want[j]), `case ${i} element ${j}`).toBeLessThanOrEqual(
            tol * Math.max(1, Math.abs(want[j]) * Math.sqrt(c.k)),
          );
        }
      }
    },
  );

  it("leaves other dtypes to the reference kernels", () => {
    const a = randn([3, 4], { seed: 1, dtype: "float64" });
    const b = randn([4, 2], { seed: 2, dtype: "float64" });
    expect(
      Array.from(
        nativeBackend!.matmul(
          a.data,
          a.shape,
          b.data,
          b.shape,
          false,
          false,
          [],
          "float64",
        ) as Float64Array,
      ),
    ).toEqual(
      Array.from(
        referenceBackend.matmul(
          a.data,
          a.shape,
          b.data,
          b.shape,
          false,
          false,
          [],
          "float64",
        ) as Float64Array,
      ),
    );
  });
});

describe.runIf(nativeBackend !== null)("native attention against the reference kernel", () => {
  const maxDiff = (x: ArrayLike<number>, y: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
    return m;
  };
  const f32 = (s: unknown, dtype: FloatDType, n: number) =>
    new Tensor(s as Float32Array, [n], dtype).toFloat32Array();

  it.each(["float32", "bfloat16", "float16"] as FloatDType[])(
    "forward and backward in %s: causal with a KV offset, masks, grouped heads, a hidden row",
    (dtype) => {
      const [B, Hq, Hkv, Tq, Tk, D] = [2, 4, 2, 3, 5, 8];
      const q = randn([B, Hq, Tq, D], { seed: 1, dtype });
      const k = randn([B, Hkv, Tk, D], { seed: 2, dtype });
      const v = randn([B, Hkv, Tk, D], { seed: 3, dtype });
      const keep = Tensor.from([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], [2, 5], "bool"); // row 1 hides every key
      for (const mask of [
        null,
        {
          data: keep.data,
          dtype: "bool" as const,
          strides: [5, 0, 0, 1] as [number, number, number, number],
        },
        {
          data: randn([Hq, Tq, Tk], { seed: 9, dtype }).data, // additive, per head and query
          dtype,
          strides: [0, Tq * Tk, Tk, 1] as [number, number, number, number],
        },
      ]) {
        const args = {
          q: q.data,
          k: k.data,
          v: v.data,
          batch: B,
          headsQ: Hq,
          headsKV: Hkv,
          seqQ: Tq,
          seqK: Tk,
          headDim: D,
          scale: 0.3,
          causal: true,
          mask,
          dtype,
        };
        const ref = referenceBackend.attention(args);
        const got = nativeBackend!.attention(args);
        const n = B * Hq * Tq * D;
        const tol = dtype === "float32" ? 1e-5 : dtype === "bfloat16" ? 2 ** -7 : 2 ** -10;
        expect(maxDiff(f32(got.out, dtype, n), f32(ref.out, dtype, n))).toBeLessThanOrEqual(
          tol * 4,
        );
        const dout = randn([B, Hq, Tq, D], { seed: 4, dtype }).data;
        const gr = referenceBackend.attentionGrad(args, ref, dout);
        const gn = nativeBackend!.attentionGrad(args, got, dout);
        expect(maxDiff(f32(gn.dq, dtype, n), f32(gr.dq, dtype, n))).toBeLessThanOrEqual(tol * 8);
        const nk = B * Hkv * Tk * D;
        expect(maxDiff(f32(gn.dk, dtype, nk), f32(gr.dk, dtype, nk))).toBeLessThanOrEqual(tol * 8);
        expect(maxDiff(f32(gn.dv, dtype, nk), f32(gr.dv, dtype, nk))).toBeLessThanOrEqual(tol * 8);
      }
    },
  );
});
