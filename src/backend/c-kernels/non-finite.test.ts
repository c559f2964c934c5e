import { describe, expect, it } from "vitest";
import { randn } from "../../tensor/creation.js";
import type { AttentionArgs, AttentionResult, Backend, Shape, Stats, UnaryOp } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { readFloats } from "../reference/float.js";
import { referenceBackend } from "../reference/index.js";
import { getBackend } from "../registry.js";

// NaN and ±Inf must reach a kernel's outputs exactly where the reference kernels put them:
// a model with one NaN weight has to give NaN logits, not finite wrong ones. Every kernel
// of the backend that PEFT_BACKEND selects (the default one when unset) is fed rows with a
// NaN, a +Inf, a -Inf, +Inf and -Inf together, and nothing but -Inf, and compared element
// by element with the reference backend: NaN where it has NaN, the same infinities, finite
// values close. Kernels a backend leaves to the reference kernels pass trivially here, as
// everything does on the reference backend itself; they stay in so that a backend that
// takes one over is checked too.

const backend: Backend = getBackend();
const DTYPES = ["float32", "bfloat16", "float16"] as const;
type KDType = (typeof DTYPES)[number];
/** Relative tolerance on finite values: the C kernels compute in float32, the reference in float64. */
const TOL: Record<KDType, number> = { float32: 1e-4, bfloat16: 2 ** -6, float16: 2 ** -8 };

/** What a poisoned row holds besides finite values. */
const ROWS = ["finite", "NaN", "+Inf", "-Inf", "+Inf and -Inf", "all -Inf", "all NaN"] as const;

/** [rows, n] float32 values, row r poisoned as ROWS[r % ROWS.length], at a position that moves with r. */
function poisoned(rows: number, n: number, seed: number, std = 1): Float32Array {
  const x = new Float32Array(randn([rows, n], { seed, std }).data as Float32Array);
  for (let r = 0; r < rows; r++) {
    const at = r * n;
    const j = (r * 7 + seed) % n;
    switch (ROWS[r % ROWS.length]) {
      case "NaN":
        x[at + j] = Number.NaN;
        break;
      case "+Inf":
        x[at + j] = Infinity;
        break;
      case "-Inf":
        x[at + j] = -Infinity;
        break;
      case "+Inf and -Inf":
        x[at + j] = Infinity;
        x[at + ((j + 1) % n)] = -Infinity;
        break;
      case "all -Inf":
        x.fill(-Infinity, at, at + n);
        break;
      case "all NaN":
        x.fill(Number.NaN, at, at + n);
        break;
    }
  }
  return x;
}

const store = (values: Float32Array, dtype: KDType): Storage =>
  referenceBackend.cast(values, "float32", dtype);

/** A kernel's output as numbers: storage of `dtype`, or float32 statistics. */
const numbers = (s: Storage | Stats, dtype: FloatDType): ArrayLike<number> =>
  s instanceof Float32Array || s instanceof Float64Array ? s : readFloats(s, dtype);

/** Differences from the reference, described; empty when they agree. */
function differences(
  got: Storage | Stats,
  want: Storage | Stats,
  dtype: KDType,
  what: string,
  tol = TOL[dtype],
): string[] {
  const g = numbers(got, dtype);
  const w = numbers(want, dtype);
  if (g.length !== w.length) return [`${what}: ${g.length} elements, want ${w.length}`];
  const out: string[] = [];
  let count = 0;
  for (let i = 0; i < w.length; i++) {
    const ok = Number.isFinite(w[i])
      ? Math.abs(g[i] - w[i]) <= tol * Math.max(1, Math.abs(w[i]))
      : Object.is(g[i], w[i]) || (Number.isNaN(g[i]) && Number.isNaN(w[i]));
    if (ok) continue;
    if (count++ < 4) out.push(`${what}[${i}] is ${g[i]}, want ${w[i]}`);
  }
  if (count > 4) out.push(`${what}: ${count - 4} more`);
  return out;
}

function expectSame(problems: string[]): void {
  expect(problems, problems.join("\n")).toEqual([]);
}

describe(`${backend.name} kernels propagate NaN and ±Inf as the reference kernels do`, () => {
  // Rows of 37 and of 300: shorter than the kernels' 16 reduction lanes plus a tail, and
  // several lane blocks long.
  const WIDTHS = [5, 37, 300];
  const rowsOf = 2 * ROWS.length;

  it.each(DTYPES)("casts from %s", (dtype) => {
    const x = store(poisoned(rowsOf, 37, 1, 1e4), dtype);
    const problems: string[] = [];
    for (const to of DTYPES) {
      problems.push(
        ...differences(
          backend.cast(x, dtype, to),
          referenceBackend.cast(x, dtype, to),
          to,
          `${dtype} -> ${to}`,
          0,
        ),
      );
    }
    expectSame(problems);
  });

  it.each(DTYPES)("add, sub, mul, div, maximum and minimum with broadcasting in %s", (dtype) => {
    const n = 37;
    const a = store(poisoned(rowsOf, n, 2), dtype);
    const b = store(poisoned(rowsOf, n, 3), dtype);
    const row = store(poisoned(ROWS.length, n, 4).subarray(n, 2 * n), dtype); // one NaN
    const problems: string[] = [];
    for (const op of ["add", "sub", "mul", "div", "maximum", "minimum"] as const) {
      const shapes: [Storage, Shape, Storage, Shape][] = [
        [a, [rowsOf, n], b, [rowsOf, n]],
        [a, [rowsOf, n], row, [n]],
        [row, [1, n], b, [rowsOf, n]],
      ];
      for (const [x, xs, y, ys] of shapes) {
        const outShape = [rowsOf, n];
        problems.push(
          ...differences(
            backend.binary(op, x, xs, y, ys, outShape, dtype),
            referenceBackend.binary(op, x, xs, y, ys, outShape, dtype),
            dtype,
            `${op} ${xs} ${ys}`,
          ),
        );
      }
    }
    expectSame(problems);
  });

  const UNARY: UnaryOp[] = [
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "tanh",
    "sigmoid",
    "relu",
    "gelu",
    "gelu_tanh",
    "silu",
    "sin",
    "cos",
  ];

  it.each(DTYPES)("unary ops and their gradients in %s", (dtype) => {
    // Values beyond exp's range as well as the specials.
    const x = store(poisoned(rowsOf, 37, 5, 40), dtype);
    const dy = store(poisoned(rowsOf, 37, 6), dtype);
    const problems: string[] = [];
    for (const op of UNARY) {
      problems.push(
        ...differences(
          backend.unary(op, x, dtype),
          referenceBackend.unary(op, x, dtype),
          dtype,
          op,
        ),
        ...differences(
          backend.unaryGrad(op, x, dy, dtype),
          referenceBackend.unaryGrad(op, x, dy, dtype),
          dtype,
          `${op} grad`,
        ),
      );
    }
    expectSame(problems);
  });

  it.each(DTYPES)("fused SiLU·mul and its gradient in %s", (dtype) => {
    const gate = store(poisoned(rowsOf, 37, 7, 40), dtype);
    const up = store(poisoned(rowsOf, 37, 8), dtype);
    const dy = store(poisoned(rowsOf, 37, 9), dtype);
    const got = backend.siluMulGrad(gate, up, dy, dtype);
    const want = referenceBackend.siluMulGrad(gate, up, dy, dtype);
    expectSame([
      ...differences(
        backend.siluMul(gate, up, dtype),
        referenceBackend.siluMul(gate, up, dtype),
        dtype,
        "siluMul",
      ),
      ...differences(got.dgate, want.dgate, dtype, "dgate"),
      ...differences(got.dup, want.dup, dtype, "dup"),
    ]);
  });

  it.each(DTYPES)("max, min, sum and mean over either axis in %s", (dtype) => {
    const problems: string[] = [];
    for (const n of WIDTHS) {
      const x = store(poisoned(rowsOf, n, 10), dtype);
      for (const op of ["max", "min", "sum", "mean"] as const) {
        for (const axes of [[1], [0], [0, 1]]) {
          problems.push(
            ...differences(
              backend.reduce(op, x, [rowsOf, n], axes, dtype),
              referenceBackend.reduce(op, x, [rowsOf, n], axes, dtype),
              dtype,
              `${op} ${n} over ${axes}`,
            ),
          );
        }
      }
    }
    expectSame(problems);
  });

  it.each(DTYPES)("softmax and log-softmax forward and backward in %s", (dtype) => {
    const problems: string[] = [];
    for (const n of WIDTHS) {
      const x = store(poisoned(rowsOf, n, 11), dtype);
      const dy = store(poisoned(rowsOf, n, 12), dtype);
      // Over the last axis, and over the first (inner > 1).
      for (const [outer, len, inner] of [
        [rowsOf, n, 1],
        [1, rowsOf, n],
      ]) {
        for (const log of [false, true]) {
          const what = `${log ? "log-" : ""}softmax ${outer}x${len}x${inner}`;
          const got = backend.softmax(x, outer, len, inner, log, dtype);
          const want = referenceBackend.softmax(x, outer, len, inner, log, dtype);
          problems.push(
            ...differences(got, want, dtype, what),
            ...differences(
              backend.softmaxGrad(got, dy, outer, len, inner, log, dtype),
              referenceBackend.softmaxGrad(want, dy, outer, len, inner, log, dtype),
              dtype,
              `${what} grad`,
            ),
          );
        }
      }
    }
    expectSame(problems);
  });

  it.each(DTYPES)("cross-entropy forward and backward in %s", (dtype) => {
    const problems: string[] = [];
    for (const n of WIDTHS) {
      const rows = 3 * ROWS.length;
      const x = store(poisoned(rows, n, 13, 3), dtype);
      // Targets on the poisoned element, off it, and ignored (the last group of rows).
      const targets = Int32Array.from({ length: rows }, (_, r) =>
        r >= 2 * ROWS.length ? -100 : r < ROWS.length ? (r * 7 + 13) % n : (r * 3) % n,
      );
      const got = backend.crossEntropy(x, targets, rows, n, -100, dtype);
      const want = referenceBackend.crossEntropy(x, targets, rows, n, -100, dtype);
      problems.push(
        ...differences(got.loss, want.loss, dtype, `loss ${n}`),
        ...differences(got.lse, want.lse, dtype, `lse ${n}`),
      );
      const dloss = Float32Array.from({ length: rows }, (_, r) =>
        r === 1 ? Number.NaN : 1 / (r + 1),
      );
      problems.push(
        ...differences(
          backend.crossEntropyGrad(x, targets, got.lse, dloss, rows, n, -100, dtype),
          referenceBackend.crossEntropyGrad(x, targets, want.lse, dloss, rows, n, -100, dtype),
          dtype,
          `dlogits ${n}`,
        ),
      );
    }
    expectSame(problems);
  });

  it.each(DTYPES)("LayerNorm and RMSNorm forward and backward in %s", (dtype) => {
    const problems: string[] = [];
    for (const n of WIDTHS) {
      const x = store(poisoned(rowsOf, n, 14, 3), dtype);
      const dy = store(poisoned(rowsOf, n, 15), dtype);
      // Weights with a NaN and an infinity, and finite ones.
      const poisonedW = poisoned(ROWS.length, n, 16);
      const wPoisoned = new Float32Array(n).fill(1);
      wPoisoned.set(poisonedW.subarray(n, n + Math.min(n, 3)));
      wPoisoned[n - 1] = Infinity;
      const weights = [
        [null, null],
        [store(poisonedW.subarray(0, n), dtype), store(poisonedW.subarray(2 * n, 3 * n), dtype)],
        [store(wPoisoned, dtype), store(poisonedW.subarray(3 * n, 4 * n), dtype)],
      ] as const;
      for (const kind of ["layer", "rms"] as const) {
        for (const [i, [w, bias]] of weights.entries()) {
          const b = kind === "layer" ? bias : null;
          const what = `${kind} ${n} weights ${i}`;
          const got = backend.norm(kind, x, w, b, rowsOf, n, 1e-5, dtype);
          const want = referenceBackend.norm(kind, x, w, b, rowsOf, n, 1e-5, dtype);
          problems.push(
            ...differences(got.y, want.y, dtype, `${what} y`),
            ...differences(got.rstd, want.rstd, dtype, `${what} rstd`),
          );
          if (want.mean === null || got.mean === null) {
            if (want.mean !== got.mean)
              problems.push(`${what}: mean ${got.mean}, want ${want.mean}`);
          } else {
            problems.push(...differences(got.mean, want.mean, dtype, `${what} mean`));
          }
          const needW = w !== null;
          const needB = b !== null;
          const gGot = backend.normGrad(kind, x, w, got, dy, rowsOf, n, needW, needB, dtype);
          const gWant = referenceBackend.normGrad(
            kind,
            x,
            w,
            want,
            dy,
            rowsOf,
            n,
            needW,
            needB,
            dtype,
          );
          problems.push(...differences(gGot.dx, gWant.dx, dtype, `${what} dx`));
          if (needW) problems.push(...differences(gGot.dw!, gWant.dw!, dtype, `${what} dw`));
          if (needB) problems.push(...differences(gGot.db!, gWant.db!, dtype, `${what} db`));
        }
      }
    }
    expectSame(problems);
  });

  it.each(DTYPES)("rotary embedding and its transpose in %s", (dtype) => {
    const [B, H, T, D] = [2, 2, 2 * ROWS.length, 8];
    const x = store(poisoned(B * H * T, D, 17), dtype);
    const problems: string[] = [];
    for (const cosBatch of [1, B]) {
      const cos = store(poisoned(cosBatch * T, D, 18), dtype);
      const sin = store(poisoned(cosBatch * T, D, 19), dtype);
      for (const inverse of [false, true]) {
        problems.push(
          ...differences(
            backend.rope(x, cos, sin, B, H, T, D, cosBatch, inverse, dtype),
            referenceBackend.rope(x, cos, sin, B, H, T, D, cosBatch, inverse, dtype),
            dtype,
            `rope ${cosBatch} ${inverse}`,
          ),
        );
      }
    }
    expectSame(problems);
  });

  it.each(DTYPES)("4-bit dequantisation with non-finite codes and scales in %s", (dtype) => {
    const packed = Uint8Array.from({ length: 600 }, (_, i) => (i * 37 + 11) & 255);
    const code = Float32Array.from({ length: 16 }, (_, i) => (i - 7.5) / 7.5);
    code[3] = Number.NaN;
    code[12] = Infinity;
    code[0] = -Infinity;
    code[7] = 0;
    const absmax = Float32Array.from({ length: 20 }, (_, i) => 0.5 + i / 3);
    absmax[2] = Number.NaN;
    absmax[5] = Infinity;
    absmax[9] = 0; // times an infinite code: NaN
    absmax[11] = -Infinity;
    const problems: string[] = [];
    for (const [start, count] of [
      [0, 1200],
      [65, 301],
    ]) {
      problems.push(
        ...differences(
          backend.dequantize4bit(packed, code, absmax, 64, start, count, dtype),
          referenceBackend.dequantize4bit(packed, code, absmax, 64, start, count, dtype),
          dtype,
          `${start}+${count}`,
          0,
        ),
      );
    }
    expectSame(problems);
  });

  it.each(DTYPES)("matmul with non-finite rows of A and columns of B in %s", (dtype) => {
    const problems: string[] = [];
    // Small, and past the products' cache blocks and micro-tiles.
    for (const [M, K, N] of [
      [rowsOf, 9, 5],
      [3 * ROWS.length, 300, 37],
    ]) {
      const a = poisoned(M, K, 20);
      const bt = poisoned(N, K, 21); // rows of Bᵀ: columns of B
      const b = new Float32Array(K * N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) b[k * N + n] = bt[n * K + k];
      const at = new Float32Array(K * M);
      for (let k = 0; k < K; k++) for (let m = 0; m < M; m++) at[k * M + m] = a[m * K + k];
      for (const [transA, transB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ]) {
        const A = store(transA ? at : a, dtype);
        const Bs = store(transB ? bt : b, dtype);
        const aShape = transA ? [K, M] : [M, K];
        const bShape = transB ? [N, K] : [K, N];
        problems.push(
          ...differences(
            backend.matmul(A, aShape, Bs, bShape, transA, transB, [], dtype),
            referenceBackend.matmul(A, aShape, Bs, bShape, transA, transB, [], dtype),
            dtype,
            `${M}x${K}x${N} ${transA} ${transB}`,
            TOL[dtype] * 4,
          ),
        );
      }
      // x · Wᵀ on a packed W where the backend packs weights.
      const packed = backend.packWeight?.(store(bt, dtype), N, K, dtype) ?? null;
      if (packed !== null && backend.matmulPacked !== undefined) {
        problems.push(
          ...differences(
            backend.matmulPacked(store(a, dtype), M, packed),
            referenceBackend.matmul(
              store(a, dtype),
              [M, K],
              store(bt, dtype),
              [N, K],
              false,
              true,
              [],
              dtype,
            ),
            dtype,
            `packed ${M}x${K}x${N}`,
            TOL[dtype] * 4,
          ),
        );
      }
    }
    expectSame(problems);
  });

  describe("attention", () => {
    // Two batch rows, two query heads on one key/value head, 40 queries and keys: causal
    // attention runs in two blocks of query rows.
    const [B, Hq, Hkv, T, S, D] = [2, 2, 1, 40, 40, 8];
    const at = (b: number, h: number, i: number, heads: number, len: number) =>
      ((b * heads + h) * len + i) * D;

    interface Case {
      name: string;
      /** Poisons q, k, v, dout, or a float mask [B, Hq, T, S] in place. */
      poison(t: {
        q: Float32Array;
        k: Float32Array;
        v: Float32Array;
        dout: Float32Array;
        mask: Float32Array;
      }): void;
    }
    const CASES: Case[] = [
      { name: "finite", poison: () => {} },
      { name: "one NaN in q", poison: ({ q }) => void (q[at(0, 0, 5, Hq, T) + 3] = Number.NaN) },
      { name: "one +Inf in q", poison: ({ q }) => void (q[at(1, 1, 37, Hq, T) + 2] = Infinity) },
      { name: "one -Inf in q", poison: ({ q }) => void (q[at(0, 1, 0, Hq, T)] = -Infinity) },
      {
        name: "a NaN query row",
        poison: ({ q }) => q.fill(Number.NaN, at(0, 0, 7, Hq, T), at(0, 0, 8, Hq, T)),
      },
      {
        name: "a NaN query row in the first causal block",
        poison: ({ q }) => q.fill(Number.NaN, at(1, 0, 3, Hq, T), at(1, 0, 4, Hq, T)),
      },
      { name: "one NaN in k", poison: ({ k }) => void (k[at(0, 0, 10, Hkv, S) + 1] = Number.NaN) },
      { name: "one +Inf in k", poison: ({ k }) => void (k[at(1, 0, 20, Hkv, S) + 4] = Infinity) },
      { name: "one -Inf in k", poison: ({ k }) => void (k[at(0, 0, 35, Hkv, S) + 7] = -Infinity) },
      { name: "one NaN in v", poison: ({ v }) => void (v[at(0, 0, 10, Hkv, S) + 1] = Number.NaN) },
      { name: "one +Inf in v", poison: ({ v }) => void (v[at(1, 0, 33, Hkv, S) + 5] = Infinity) },
      { name: "one -Inf in v", poison: ({ v }) => void (v[at(0, 0, 3, Hkv, S)] = -Infinity) },
      {
        name: "one NaN in dout",
        poison: ({ dout }) => void (dout[at(0, 1, 12, Hq, T) + 6] = Number.NaN),
      },
      {
        name: "one +Inf in dout",
        poison: ({ dout }) => void (dout[at(1, 0, 2, Hq, T)] = Infinity),
      },
      // Float masks only: the bool and causal variants of these equal "finite".
      {
        name: "one NaN in the mask",
        poison: ({ mask }) => void (mask[((0 * Hq + 1) * T + 9) * S + 4] = Number.NaN),
      },
      {
        name: "one +Inf in the mask",
        poison: ({ mask }) => void (mask[((1 * Hq + 0) * T + 30) * S + 2] = Infinity),
      },
      {
        name: "one -Inf in the mask",
        poison: ({ mask }) => void (mask[((0 * Hq + 0) * T + 6) * S + 6] = -Infinity),
      },
      {
        name: "a mask row of -Inf",
        poison: ({ mask }) =>
          mask.fill(-Infinity, ((1 * Hq + 1) * T + 20) * S, ((1 * Hq + 1) * T + 21) * S),
      },
    ];

    it.each(DTYPES.flatMap((dtype) => CASES.map((c) => [c.name, dtype, c] as const)))(
      "%s, %s: forward and backward, causal or not, without a mask, with a bool and with a float mask",
      (_, dtype, c) => {
        const t = {
          q: new Float32Array(randn([B, Hq, T, D], { seed: 1 }).data as Float32Array),
          k: new Float32Array(randn([B, Hkv, S, D], { seed: 2 }).data as Float32Array),
          v: new Float32Array(randn([B, Hkv, S, D], { seed: 3 }).data as Float32Array),
          dout: new Float32Array(randn([B, Hq, T, D], { seed: 4 }).data as Float32Array),
          mask: new Float32Array(randn([B, Hq, T, S], { seed: 5 }).data as Float32Array),
        };
        c.poison(t);
        // Keep flags per batch row and key: batch row 1 hides every fourth key.
        const keep = Uint8Array.from({ length: B * S }, (_, i) => (i >= S && i % 4 === 3 ? 0 : 1));
        const masks: AttentionArgs["mask"][] = [
          null,
          { data: keep, dtype: "bool", strides: [S, 0, 0, 1] },
          { data: store(t.mask, dtype), dtype, strides: [Hq * T * S, T * S, S, 1] },
        ];
        const dout = store(t.dout, dtype);
        const problems: string[] = [];
        for (const causal of [true, false]) {
          for (const [m, mask] of masks.entries()) {
            const args: AttentionArgs = {
              q: store(t.q, dtype),
              k: store(t.k, dtype),
              v: store(t.v, dtype),
              batch: B,
              headsQ: Hq,
              headsKV: Hkv,
              seqQ: T,
              seqK: S,
              headDim: D,
              scale: 0.35,
              causal,
              mask,
              dtype,
            };
            const what = `${causal ? "causal" : "full"} mask ${m}`;
            const got: AttentionResult = backend.attention(args);
            const want = referenceBackend.attention(args);
            problems.push(
              ...differences(got.out, want.out, dtype, `${what} out`, TOL[dtype] * 4),
              ...differences(got.lse, want.lse, dtype, `${what} lse`),
            );
            const gGot = backend.attentionGrad(args, got, dout);
            const gWant = referenceBackend.attentionGrad(args, want, dout);
            for (const key of ["dq", "dk", "dv"] as const) {
              problems.push(
                ...differences(gGot[key], gWant[key], dtype, `${what} ${key}`, TOL[dtype] * 8),
              );
            }
          }
        }
        expectSame(problems);
      },
    );
  });
});
