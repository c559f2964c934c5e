import { describe, expect, it } from "vitest";
import { poisonedNative } from "../../../test/helpers/poisoned-native.js";
import { randn } from "../../tensor/creation.js";
import { Generator } from "../../tensor/random.js";
import { Tensor } from "../../tensor/tensor.js";
import type { AttentionArgs, Backend, Shape } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { nativeBackend } from "../native/index.js";
import { referenceBackend } from "../reference/index.js";
import { wasmBackend } from "../wasm/index.js";

const DTYPES: FloatDType[] = ["float32", "bfloat16", "float16"];
const floats = (s: Storage, dtype: FloatDType) => new Tensor(s, [s.length], dtype).toFloat32Array();
/** One unit in the last place of each dtype, relative. */
const ULP: Record<string, number> = { float32: 2 ** -23, bfloat16: 2 ** -7, float16: 2 ** -10 };

function expectClose(got: Storage, want: Storage, dtype: FloatDType, ulps: number, what: string) {
  const g = floats(got, dtype);
  const w = floats(want, dtype);
  expect(g.length, what).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    // Relative to the value, or to 1 where the value is small: SiLU's gradient cancels near
    // x = -1.28, where float32 and the float64 reference differ in absolute, not relative, terms.
    const tol = ulps * ULP[dtype] * Math.max(Math.abs(w[i]), 1);
    if (!(Math.abs(g[i] - w[i]) <= tol)) {
      expect.fail(`${what}: element ${i} is ${g[i]}, want ${w[i]} (within ${ulps} ulp)`);
    }
  }
}

/** The broadcast of two shapes (right-aligned; a 1 takes the other size). */
function broadcast(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[i - n + a.length] ?? 1;
    const y = b[i - n + b.length] ?? 1;
    return x === 1 ? y : x;
  });
}

// The same C kernels on each host that serves them: the native addon, and the wasm module
// (skipped where the addon is not built or the engine lacks WebAssembly SIMD).
const HOSTS = [
  { name: "native", backend: nativeBackend },
  { name: "native (unzeroed outputs)", backend: poisonedNative },
  { name: "wasm", backend: wasmBackend },
];

describe.each(HOSTS)("$name C kernels against the reference kernels", ({ backend }) => {
  if (backend === null) {
    it.skip("the backend is not available here", () => {});
    return;
  }
  const kernels: Backend = backend;
  // Equal shapes, a row vector, a column, a scalar, broadcasting on both sides, odd sizes.
  const shapes: [Shape, Shape][] = [
    [
      [5, 7],
      [5, 7],
    ],
    [[3, 5, 7], [7]],
    [
      [3, 5, 7],
      [5, 1],
    ],
    [[4, 33], [1]],
    [[1], [6, 9]],
    [
      [3, 1, 5],
      [1, 4, 1],
    ],
    [
      [2, 3, 300, 129],
      [2, 3, 300, 129],
    ], // large enough to split across threads
    [[0, 3], [3]],
  ];

  it.each(DTYPES)("add, sub, mul and div with broadcasting in %s are exact", (dtype) => {
    for (const [i, [as, bs]] of shapes.entries()) {
      const a = randn(as, { seed: i, dtype });
      const b = randn(bs, { seed: 100 + i, dtype });
      const outShape = broadcast(as, bs);
      for (const op of ["add", "sub", "mul", "div"] as const) {
        const got = kernels.binary(op, a.data, as, b.data, bs, outShape, dtype);
        const want = referenceBackend.binary(op, a.data, as, b.data, bs, outShape, dtype);
        // The same float32 operation rounded once: identical bits.
        expect(Array.from(got as Float32Array), `${op} ${i}`).toEqual(
          Array.from(want as Float32Array),
        );
      }
    }
  });

  it("casts between float32, bfloat16 and float16 as the reference does, bit for bit", () => {
    const specials = [
      0,
      -0,
      1e-8,
      -1e-8,
      65504,
      65520,
      1e30,
      -1e30,
      3.0e38,
      Infinity,
      -Infinity,
      Number.NaN,
    ];
    const base = randn([70000], { seed: 4, std: 100 });
    const values = new Float32Array(base.size + specials.length);
    values.set(base.data as Float32Array);
    values.set(specials, base.size);
    for (const from of DTYPES) {
      const x = referenceBackend.cast(values, "float32", from);
      for (const to of DTYPES) {
        const got = kernels.cast(x, from, to);
        const want = referenceBackend.cast(x, from, to);
        expect(Array.from(got as Uint16Array), `${from} -> ${to}`).toEqual(
          Array.from(want as Uint16Array),
        );
      }
    }
  });

  it.each(DTYPES)("SiLU forward and backward in %s", (dtype) => {
    const x = randn([1000], { seed: 1, dtype, std: 6 });
    const dy = randn([1000], { seed: 2, dtype });
    // The float32 exponential is within about an ulp; 16-bit outputs may round the other way.
    const ulps = dtype === "float32" ? 8 : 1;
    expectClose(
      kernels.unary("silu", x.data, dtype),
      referenceBackend.unary("silu", x.data, dtype),
      dtype,
      ulps,
      "silu",
    );
    expectClose(
      kernels.unaryGrad("silu", x.data, dy.data, dtype),
      referenceBackend.unaryGrad("silu", x.data, dy.data, dtype),
      dtype,
      ulps * 2,
      "silu grad",
    );
  });

  it.each(DTYPES)("fused SiLU·mul forward and backward in %s, as the two ops round", (dtype) => {
    const gate = randn([3000], { seed: 5, dtype, std: 4 });
    const up = randn([3000], { seed: 6, dtype });
    const dy = randn([3000], { seed: 7, dtype });
    const ulps = dtype === "float32" ? 8 : 1;
    expectClose(
      kernels.siluMul(gate.data, up.data, dtype),
      referenceBackend.siluMul(gate.data, up.data, dtype),
      dtype,
      ulps,
      "siluMul",
    );
    const got = kernels.siluMulGrad(gate.data, up.data, dy.data, dtype);
    const want = referenceBackend.siluMulGrad(gate.data, up.data, dy.data, dtype);
    expectClose(got.dup, want.dup, dtype, ulps, "siluMul dup");
    expectClose(got.dgate, want.dgate, dtype, ulps * 2, "siluMul dgate");
  });

  it.each(DTYPES)("cross-entropy forward and backward in %s, with ignored rows", (dtype) => {
    const [rows, classes] = [37, 1001];
    const logits = randn([rows, classes], { seed: 3, dtype });
    const targets = Int32Array.from({ length: rows }, (_, r) =>
      r % 5 === 4 ? -100 : (r * 97) % classes,
    );
    const got = kernels.crossEntropy(logits.data, targets, rows, classes, -100, dtype);
    const want = referenceBackend.crossEntropy(logits.data, targets, rows, classes, -100, dtype);
    for (let r = 0; r < rows; r++) {
      expect(Math.abs(got.lse[r] - want.lse[r]), `lse ${r}`).toBeLessThanOrEqual(
        1e-5 * Math.abs(want.lse[r]),
      );
      expect(Math.abs(got.loss[r] - want.loss[r]), `loss ${r}`).toBeLessThanOrEqual(
        1e-5 * Math.max(1, Math.abs(want.loss[r])),
      );
    }
    const dloss = Float32Array.from({ length: rows }, (_, r) => 1 / (r + 1));
    const gradGot = kernels.crossEntropyGrad(
      logits.data,
      targets,
      want.lse,
      dloss,
      rows,
      classes,
      -100,
      dtype,
    );
    const gradWant = referenceBackend.crossEntropyGrad(
      logits.data,
      targets,
      want.lse,
      dloss,
      rows,
      classes,
      -100,
      dtype,
    );
    expectClose(gradGot, gradWant, dtype, dtype === "float32" ? 8 : 1, "cross-entropy grad");
  });

  it("flushes the cross-entropy gradient's float32 subnormals to zero, and nothing else", () => {
    // Logits spread over 80: e^(x - lse) reaches 1e-35, and a gradient of 1e-4 per row
    // takes it below 2^-126, where the next product would slow down several times.
    const [rows, classes] = [4, 4096];
    const x = Float32Array.from(
      { length: rows * classes },
      (_, i) => (-80 * ((i * 7919) % classes)) / classes,
    );
    const targets = Int32Array.from({ length: rows }, (_, r) => r * 5);
    const { lse } = referenceBackend.crossEntropy(x, targets, rows, classes, -100, "float32");
    const dloss = new Float32Array(rows).fill(1e-4);
    const grad = (b: Backend) =>
      b.crossEntropyGrad(x, targets, lse, dloss, rows, classes, -100, "float32") as Float32Array;
    const [want, got] = [grad(referenceBackend), grad(kernels)];
    const tiny = 2 ** -126;
    const subnormal = (v: number) => v !== 0 && Math.abs(v) < tiny;
    expect(want.some(subnormal), "the reference keeps subnormals here").toBe(true);
    expect(got.filter(subnormal).length).toBe(0);
    for (let i = 0; i < want.length; i++) {
      const tol = subnormal(want[i]) ? tiny : 8 * ULP.float32 * Math.max(Math.abs(want[i]), 1);
      if (!(Math.abs(got[i] - want[i]) <= tol))
        expect.fail(`element ${i}: ${got[i]}, want ${want[i]}`);
    }
  });

  it.each(DTYPES)(
    "4-bit dequantisation in %s at odd offsets and block sizes, bit for bit",
    (dtype) => {
      const g = new Generator(9);
      const packed = Uint8Array.from({ length: 5000 }, () => g.nextUint32() & 255);
      const code = Float32Array.from({ length: 16 }, (_, i) => (i - 7.5) / 7.5);
      for (const blocksize of [32, 64, 4096]) {
        const absmax = Float32Array.from(
          { length: Math.ceil(10000 / blocksize) },
          (_, i) => 0.5 + i / 3,
        );
        // Blocks whose values are NaN and infinite, which the bfloat16 rounding keeps apart.
        const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
        absmax.set(special.slice(0, absmax.length - 1), 1);
        for (const [start, count] of [
          [0, 10000],
          [1, 1],
          [63, 130],
          [4097, 5000],
          [9999, 1],
          [5, 0],
        ]) {
          const got = kernels.dequantize4bit(packed, code, absmax, blocksize, start, count, dtype);
          const want = referenceBackend.dequantize4bit(
            packed,
            code,
            absmax,
            blocksize,
            start,
            count,
            dtype,
          );
          expect(Array.from(got as Uint16Array), `${blocksize} ${start}+${count}`).toEqual(
            Array.from(want as Uint16Array),
          );
        }
      }
    },
  );

  it.each(DTYPES)("LayerNorm and RMSNorm forward and backward in %s", (dtype) => {
    for (const [rows, n] of [
      [1, 1],
      [7, 33],
      [300, 129],
    ]) {
      const x = randn([rows, n], { seed: rows, dtype, std: 3 });
      const w = randn([n], { seed: 2, dtype });
      const b = randn([n], { seed: 3, dtype });
      const dy = randn([rows, n], { seed: 4, dtype });
      for (const kind of ["layer", "rms"] as const) {
        for (const affine of [true, false]) {
          const [W, B] = affine ? [w.data, kind === "layer" ? b.data : null] : [null, null];
          const got = kernels.norm(kind, x.data, W, B, rows, n, 1e-5, dtype);
          const want = referenceBackend.norm(kind, x.data, W, B, rows, n, 1e-5, dtype);
          const what = `${kind} ${rows}x${n} affine ${affine}`;
          // Same float64 arithmetic: identical but for the last bit of a sum's order.
          expectClose(got.y, want.y, dtype, 1, what);
          expectClose(got.rstd, want.rstd, "float32", 2, `${what} rstd`);
          const gGot = kernels.normGrad(
            kind,
            x.data,
            W,
            got,
            dy.data,
            rows,
            n,
            affine,
            B !== null,
            dtype,
          );
          const gWant = referenceBackend.normGrad(
            kind,
            x.data,
            W,
            want,
            dy.data,
            rows,
            n,
            affine,
            B !== null,
            dtype,
          );
          expectClose(gGot.dx, gWant.dx, dtype, 4, `${what} dx`);
          if (affine) expectClose(gGot.dw!, gWant.dw!, dtype, 1, `${what} dw`);
          if (B !== null) expectClose(gGot.db!, gWant.db!, dtype, 1, `${what} db`);
        }
      }
    }
  });

  it.each(DTYPES)(
    "rotary embedding and its transpose in %s, shared and per-batch tables",
    (dtype) => {
      const [B, H, T, D] = [2, 3, 50, 16];
      const x = randn([B, H, T, D], { seed: 1, dtype });
      for (const cosBatch of [1, B]) {
        const cos = randn([cosBatch, T, D], { seed: 2, dtype });
        const sin = randn([cosBatch, T, D], { seed: 3, dtype });
        for (const inverse of [false, true]) {
          const got = kernels.rope(
            x.data,
            cos.data,
            sin.data,
            B,
            H,
            T,
            D,
            cosBatch,
            inverse,
            dtype,
          );
          const want = referenceBackend.rope(
            x.data,
            cos.data,
            sin.data,
            B,
            H,
            T,
            D,
            cosBatch,
            inverse,
            dtype,
          );
          expect(Array.from(got as Uint16Array), `${cosBatch} ${inverse}`).toEqual(
            Array.from(want as Uint16Array),
          );
        }
      }
    },
  );

  it("permutes and slices every dtype as the reference does", () => {
    const shape = [3, 4, 5, 6];
    for (const dtype of [
      "float32",
      "float64",
      "bfloat16",
      "int32",
      "int64",
      "uint8",
      "bool",
    ] as const) {
      const x = referenceBackend.cast(randn(shape, { seed: 7, std: 50 }).data, "float32", dtype);
      for (const perm of [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [0, 2, 1, 3],
        [1, 3, 0, 2],
      ]) {
        const got = kernels.permute(x, shape, perm, dtype);
        const want = referenceBackend.permute(x, shape, perm, dtype);
        expect(Array.from(got as Float32Array), `${dtype} ${perm}`).toEqual(
          Array.from(want as Float32Array),
        );
      }
      const starts = [1, 0, 2, 1];
      const steps = [1, 2, 1, 3];
      const outShape = [2, 2, 3, 2];
      const got = kernels.slice(x, shape, starts, steps, outShape, dtype);
      const want = referenceBackend.slice(x, shape, starts, steps, outShape, dtype);
      expect(Array.from(got as Float32Array), `${dtype} slice`).toEqual(
        Array.from(want as Float32Array),
      );
    }
  });

  it("rejects a target outside the classes with an error, not a wild read", () => {
    const logits = randn([2, 4], { seed: 1 });
    expect(() =>
      kernels.crossEntropy(logits.data, Int32Array.from([1, 9]), 2, 4, -100, "float32"),
    ).toThrow(/out of range/);
  });
});

describe.each(HOSTS)("$name attention against the reference kernel", ({ backend }) => {
  if (backend === null) {
    it.skip("the backend is not available here", () => {});
    return;
  }
  const kernels: Backend = backend;
  /** Largest difference, relative to the largest reference value where that exceeds 1. */
  const relDiff = (got: Storage, want: Storage, dtype: FloatDType) => {
    const g = floats(got, dtype);
    const w = floats(want, dtype);
    let diff = 0;
    let scale = 1;
    for (let i = 0; i < w.length; i++) {
      if (Number.isFinite(w[i])) scale = Math.max(scale, Math.abs(w[i]));
      if (g[i] === w[i]) continue; // also -Infinity, the lse of a row that sees no key
      diff = Math.max(diff, Number.isNaN(g[i] - w[i]) ? Infinity : Math.abs(g[i] - w[i]));
    }
    return diff / scale;
  };
  // The second shape's sequences exceed the products' cache blocks and micro-tiles; the
  // others run causal attention in several blocks of query rows: as many queries as keys
  // with a partial last block, a KV offset, and more queries than keys (the first rows
  // see no key).
  const SHAPES = [
    [2, 4, 2, 3, 5, 8],
    [2, 2, 1, 37, 300, 20],
    [2, 2, 1, 150, 150, 16],
    [2, 2, 2, 130, 200, 8],
    [2, 1, 1, 100, 70, 8],
  ];

  it.each(DTYPES)(
    "forward and backward in %s: causal or not, with a KV offset, masks, grouped heads, a hidden row, long sequences",
    (dtype) => {
      const tol = dtype === "float32" ? 1e-5 : dtype === "bfloat16" ? 2 ** -7 : 2 ** -10;
      for (const [[B, Hq, Hkv, Tq, Tk, D], causal] of SHAPES.flatMap((s) => [
        [s, true] as const,
        [s, false] as const,
      ])) {
        const q = randn([B, Hq, Tq, D], { seed: 1, dtype });
        const k = randn([B, Hkv, Tk, D], { seed: 2, dtype });
        const v = randn([B, Hkv, Tk, D], { seed: 3, dtype });
        // Keep flags per batch row and key; batch row 1 hides every key.
        const keep = Uint8Array.from({ length: B * Tk }, (_, i) =>
          i >= Tk ? 0 : i % 4 === 3 ? 0 : 1,
        );
        const masks = [
          null,
          { data: keep, dtype: "bool" as const, strides: [Tk, 0, 0, 1] },
          {
            data: randn([Hq, Tq, Tk], { seed: 9, dtype }).data, // additive, per head and query
            dtype,
            strides: [0, Tq * Tk, Tk, 1],
          },
        ];
        for (const [m, mask] of masks.entries()) {
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
            causal,
            mask: mask as AttentionArgs["mask"],
            dtype,
          };
          const what = `${[B, Hq, Hkv, Tq, Tk, D].join("x")}${causal ? " causal" : ""} mask ${m}`;
          const ref = referenceBackend.attention(args);
          const got = kernels.attention(args);
          expect(relDiff(got.out, ref.out, dtype), `${what} out`).toBeLessThanOrEqual(tol * 4);
          expect(relDiff(got.lse, ref.lse, "float32"), `${what} lse`).toBeLessThanOrEqual(1e-5);
          const dout = randn([B, Hq, Tq, D], { seed: 4, dtype }).data;
          const gr = referenceBackend.attentionGrad(args, ref, dout);
          const gn = kernels.attentionGrad(args, got, dout);
          expect(relDiff(gn.dq, gr.dq, dtype), `${what} dq`).toBeLessThanOrEqual(tol * 8);
          expect(relDiff(gn.dk, gr.dk, dtype), `${what} dk`).toBeLessThanOrEqual(tol * 8);
          expect(relDiff(gn.dv, gr.dv, dtype), `${what} dv`).toBeLessThanOrEqual(tol * 8);
        }
      }
    },
  );
});
