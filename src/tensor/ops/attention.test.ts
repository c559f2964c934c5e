import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { at, maxAbsDiff, values } from "../../../test/helpers/naive.js";
import { DTypeError, ShapeError, ValueError } from "../../errors.js";
import { arange, randn } from "../creation.js";
import { autocast } from "../state.js";
import { Tensor } from "../tensor.js";
import { rope, rotaryCosSin, scaledDotProductAttention } from "./attention.js";
import { sum } from "./reduce.js";

interface Opts {
  mask?: Tensor | null;
  causal?: boolean;
  scale?: number;
}

/** softmax(QKᵀ·scale + mask)·V by explicit loops in float64, with repeat-kv for GQA. */
function naiveAttention(q: Tensor, k: Tensor, v: Tensor, o: Opts = {}): number[] {
  const [B, H, T, D] = q.shape;
  const [, Hkv, S] = k.shape;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor((h * Hkv) / H);
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j < S; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += at(q, [b, h, i, d]) * at(k, [b, kh, j, d]);
          s *= scale;
          if (o.causal && j > i + S - T) s = -Infinity;
          if (o.mask) {
            const m = at(o.mask, [b, h, i, j]);
            if (o.mask.dtype === "bool") s = m ? s : -Infinity;
            else s += m;
          }
          scores.push(s);
        }
        const max = Math.max(...scores);
        const p = scores.map((s) => (max === -Infinity ? 0 : Math.exp(s - max)));
        const z = p.reduce((x, y) => x + y, 0);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < S; j++) acc += z === 0 ? 0 : (p[j] / z) * at(v, [b, kh, j, d]);
          out.push(acc);
        }
      }
    }
  }
  return out;
}

describe("scaledDotProductAttention", () => {
  const padMask = Tensor.from([
    [true, true, true, true, false],
    [true, true, true, true, true],
  ]).reshape([2, 1, 1, 5]);
  const cases: [string, number[], number[], Opts][] = [
    ["plain", [2, 2, 3, 4], [2, 2, 3, 4], {}],
    ["causal", [1, 2, 4, 4], [1, 2, 4, 4], { causal: true }],
    ["grouped-query heads (4 query, 2 kv)", [2, 4, 3, 4], [2, 2, 3, 4], { causal: true }],
    ["causal with a KV cache (Tq < Tk)", [1, 2, 2, 4], [1, 2, 5, 4], { causal: true }],
    ["bool padding mask", [2, 2, 3, 4], [2, 2, 5, 4], { mask: padMask }],
    ["float additive mask and custom scale", [1, 2, 3, 4], [1, 2, 3, 4], { scale: 0.3 }],
  ];

  it.each(cases)("%s matches explicit loops", (_n, qs, ks, o) => {
    const q = param(qs, 1);
    const k = param(ks, 2);
    const v = param(ks, 3);
    const mask = _n.startsWith("float") ? param([3, 3], 4).detach() : o.mask;
    const y = scaledDotProductAttention(q, k, v, {
      attnMask: mask,
      isCausal: o.causal,
      scale: o.scale,
    });
    expect(y.shape).toEqual(qs);
    expect(maxAbsDiff(values(y), naiveAttention(q, k, v, { ...o, mask }))).toBeLessThan(1e-12);
  });

  it.each(cases)("%s has finite-difference gradients for q, k and v", (_n, qs, ks, o) => {
    const mask = _n.startsWith("float") ? param([3, 3], 4).detach() : o.mask;
    gradcheck(
      (q, k, v) =>
        scaledDotProductAttention(q, k, v, { attnMask: mask, isCausal: o.causal, scale: o.scale }),
      [param(qs, 5), param(ks, 6), param(ks, 7)],
    );
  });

  it("gives a query that sees no key a zero output and zero gradients, never NaN", () => {
    const mask = Tensor.from([
      [false, false, false],
      [true, false, true],
    ]).reshape([1, 1, 2, 3]);
    const q = param([1, 1, 2, 4], 8);
    const k = param([1, 1, 3, 4], 9);
    const v = param([1, 1, 3, 4], 10);
    const y = scaledDotProductAttention(q, k, v, { attnMask: mask });
    expect(values(y).slice(0, 4)).toEqual([0, 0, 0, 0]);
    sum(y).backward();
    expect(values(q.grad!).slice(0, 4)).toEqual([0, 0, 0, 0]);
    expect(values(k.grad!).every(Number.isFinite)).toBe(true);
    gradcheck((a, b, c) => scaledDotProductAttention(a, b, c, { attnMask: mask }), [q, k, v]);
  });

  it("runs 16-bit inputs close to the float32 result and follows autocast", () => {
    const q = randn([1, 2, 4, 8], { seed: 11 });
    const k = randn([1, 2, 4, 8], { seed: 12 });
    const ref = values(scaledDotProductAttention(q, k, k, { isCausal: true }));
    const bf = scaledDotProductAttention(q.to("bfloat16"), k.to("bfloat16"), k.to("bfloat16"), {
      isCausal: true,
    });
    expect(bf.dtype).toBe("bfloat16");
    expect(maxAbsDiff(values(bf), ref)).toBeLessThan(0.03);
    const mixed = autocast("bfloat16", () =>
      scaledDotProductAttention(q, k.to("bfloat16"), k, { isCausal: true }),
    );
    expect(mixed.dtype).toBe("bfloat16");
    expect(() => scaledDotProductAttention(q, k.to("bfloat16"), k)).toThrow(DTypeError);
  });

  it("explains shape errors", () => {
    expect(() =>
      scaledDotProductAttention(randn([1, 3, 2, 4]), randn([1, 2, 2, 4]), randn([1, 2, 2, 4])),
    ).toThrow(ShapeError);
    expect(() =>
      scaledDotProductAttention(randn([1, 3, 2, 4]), randn([1, 2, 2, 4]), randn([1, 2, 2, 4])),
    ).toThrow(/3 query heads a multiple of Hkv/);
    expect(() => scaledDotProductAttention(randn([2, 4]), randn([2, 4]), randn([2, 4]))).toThrow(
      /expected 4-D q, k, v/,
    );
    expect(() =>
      scaledDotProductAttention(randn([1, 1, 2, 4]), randn([1, 1, 3, 4]), randn([1, 1, 3, 4]), {
        attnMask: randn([2, 2]),
      }),
    ).toThrow(/attnMask of shape \[2, 2\] does not broadcast to the scores' shape \[1, 1, 2, 3\]/);
  });
});

describe("rope", () => {
  function naiveRope(x: Tensor, cos: Tensor, sin: Tensor): number[] {
    const [B, H, T, D] = x.shape;
    const out: number[] = [];
    const half = D / 2;
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++)
          for (let d = 0; d < D; d++) {
            const rot = d < half ? -at(x, [b, h, t, d + half]) : at(x, [b, h, t, d - half]);
            const tb = cos.ndim === 3 ? [b, t, d] : [t, d];
            out.push(at(x, [b, h, t, d]) * at(cos, tb) + rot * at(sin, tb));
          }
    return out;
  }

  it.each([[[3, 6]], [[1, 3, 6]], [[2, 3, 6]]])(
    "matches x·cos + rotate_half(x)·sin for tables of shape %j",
    (tableShape) => {
      const x = param([2, 2, 3, 6], 1);
      // Arbitrary tables (not symmetric halves) so a transposition mistake in backward shows.
      const cos = param(tableShape, 2).detach();
      const sin = param(tableShape, 3).detach();
      expect(maxAbsDiff(values(rope(x, cos, sin)), naiveRope(x, cos, sin))).toBeLessThan(1e-12);
      gradcheck((t) => rope(t, cos, sin), [x]);
    },
  );

  it("builds Hugging Face's default tables", () => {
    const invFreq = Float32Array.from([0, 1, 2, 3], (i) =>
      Math.fround(1 / Math.fround(10000 ** Math.fround((2 * i) / 8))),
    );
    const { cos, sin } = rotaryCosSin(arange(5), invFreq);
    expect(cos.shape).toEqual([1, 5, 8]);
    for (let p = 0; p < 5; p++) {
      for (let d = 0; d < 8; d++) {
        const angle = Math.fround(p * invFreq[d % 4]);
        expect(at(cos, [0, p, d])).toBeCloseTo(Math.cos(angle), 6);
        expect(at(sin, [0, p, d])).toBeCloseTo(Math.sin(angle), 6);
      }
    }
    expect(
      rotaryCosSin(
        Tensor.from([
          [0, 1],
          [5, 6],
        ]),
        invFreq.subarray(0, 2),
      ).cos.shape,
    ).toEqual([2, 2, 4]);
    const scaled = rotaryCosSin(arange(5), invFreq, 0.5);
    expect(at(scaled.cos, [0, 3, 1])).toBeCloseTo(0.5 * at(cos, [0, 3, 1]), 7);
    expect(at(scaled.sin, [0, 3, 6])).toBeCloseTo(0.5 * at(sin, [0, 3, 6]), 7);
  });

  it("rejects bad shapes and gradients through the tables", () => {
    const x = randn([1, 1, 3, 4]);
    expect(() => rope(randn([1, 1, 3, 5]), randn([3, 5]), randn([3, 5]))).toThrow(/even dim/);
    expect(() => rope(x, randn([2, 4]), randn([2, 4]))).toThrow(
      /cos of shape \[2, 4\] does not fit x \[1, 1, 3, 4\]/,
    );
    expect(() => rope(x, randn([3, 4]).requiresGrad_(), randn([3, 4]))).toThrow(ValueError);
    expect(() => rotaryCosSin(randn([1, 2, 3]), new Float32Array(2))).toThrow(
      /positions of shape \[T\] or \[B, T\]/,
    );
  });
});
