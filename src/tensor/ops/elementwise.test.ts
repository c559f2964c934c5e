import { describe, expect, it } from "vitest";
import { gradcheck, param, randomShape } from "../../../test/helpers/gradcheck.js";
import { DTypeError, ShapeError, ValueError } from "../../errors.js";
import { randn, uniform } from "../creation.js";
import { Generator } from "../random.js";
import { autocast } from "../state.js";
import { Tensor } from "../tensor.js";
import * as ops from "./index.js";

/** Positive float64 leaf values (for log, sqrt, rsqrt, pow bases). */
function positive(shape: number[], seed: number): Tensor {
  const t = uniform(shape, 0.5, 2, { seed, dtype: "float64" });
  return t.requiresGrad_();
}

// erf by direct numerical integration (Simpson), independent of the series in math.ts.
function erfBySimpson(x: number): number {
  const n = 2000;
  const h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return ((2 / Math.sqrt(Math.PI)) * s * h) / 3;
}

const UNARY: [
  string,
  (x: Tensor) => Tensor,
  (v: number) => number,
  "any" | "positive" | "nonzero",
][] = [
  ["neg", ops.neg, (v) => -v, "any"],
  ["abs", ops.abs, Math.abs, "nonzero"],
  ["exp", ops.exp, Math.exp, "any"],
  ["log", ops.log, Math.log, "positive"],
  ["sqrt", ops.sqrt, Math.sqrt, "positive"],
  ["rsqrt", ops.rsqrt, (v) => 1 / Math.sqrt(v), "positive"],
  ["tanh", ops.tanh, Math.tanh, "any"],
  ["sigmoid", ops.sigmoid, (v) => 1 / (1 + Math.exp(-v)), "any"],
  ["relu", ops.relu, (v) => Math.max(v, 0), "nonzero"],
  ["gelu", (x) => ops.gelu(x), (v) => 0.5 * v * (1 + erfBySimpson(v / Math.SQRT2)), "any"],
  [
    "gelu tanh",
    (x) => ops.gelu(x, { approximate: "tanh" }),
    (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
    "any",
  ],
  ["silu", ops.silu, (v) => v / (1 + Math.exp(-v)), "any"],
  ["sin", ops.sin, Math.sin, "any"],
  ["cos", ops.cos, Math.cos, "any"],
];

describe("unary ops", () => {
  describe.each(UNARY)("%s", (_name, op, ref, domain) => {
    const input = (shape: number[], seed: number): Tensor => {
      if (domain === "positive") return positive(shape, seed);
      const t = param(shape, seed, 1.5);
      // Keep away from the kink at 0 where finite differences are meaningless.
      if (domain === "nonzero") {
        const d = t.data as Float64Array;
        for (let i = 0; i < d.length; i++) if (Math.abs(d[i]) < 0.05) d[i] = 0.3;
      }
      return t;
    };

    it("matches Math in float64", () => {
      const x = input([3, 5], 1);
      const y = op(x).data as Float64Array;
      const xs = x.data as Float64Array;
      for (let i = 0; i < xs.length; i++) expect(y[i]).toBeCloseTo(ref(xs[i]), 12);
    });

    it("has the gradient of finite differences", () => {
      const g = new Generator(7);
      for (let trial = 0; trial < 3; trial++) {
        gradcheck(op, [input(randomShape(g, 1 + trial), 10 + trial)]);
      }
    });

    it("rounds bfloat16 and float16 outputs of a float32 computation", () => {
      const x32 = input([64], 3).detach().to("float32");
      const expected = op(x32).toFloat32Array();
      for (const [dtype, tol] of [
        ["bfloat16", 2 ** -8],
        ["float16", 2 ** -11],
      ] as const) {
        const x16 = x32.to(dtype);
        const y = op(x16);
        expect(y.dtype).toBe(dtype);
        // Input rounding moves the result by at most |f'(x)| * ulp(x); allow that plus the output rounding.
        const got = y.toFloat32Array();
        const xin = x16.toFloat32Array();
        const fromRounded = op(new Tensor(xin, [64], "float32")).toFloat32Array();
        for (let i = 0; i < 64; i++) {
          expect(Math.abs(got[i] - fromRounded[i])).toBeLessThanOrEqual(
            tol * Math.abs(fromRounded[i]) + 1e-30,
          );
          expect(Number.isFinite(expected[i])).toBe(Number.isFinite(got[i]));
        }
      }
    });
  });

  it("computes integer inputs in float32", () => {
    const y = ops.exp(Tensor.from([0, 1], [2], "int64"));
    expect(y.dtype).toBe("float32");
    expect(y.toArray()).toEqual([1, Math.fround(Math.E)]);
  });

  it("rejects an unknown gelu approximation", () => {
    expect(() => ops.gelu(randn([2]), { approximate: "fast" as "tanh" })).toThrow(ValueError);
  });
});

const BINARY: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ["add", ops.add, (a, b) => a + b],
  ["sub", ops.sub, (a, b) => a - b],
  ["mul", ops.mul, (a, b) => a * b],
  ["div", ops.div, (a, b) => a / b],
  ["pow", ops.pow, (a, b) => a ** b],
  ["maximum", ops.maximum, Math.max],
  ["minimum", ops.minimum, Math.min],
];

describe("binary ops", () => {
  const shapes: [number[], number[]][] = [
    [
      [3, 4],
      [3, 4],
    ],
    [[3, 4], [4]],
    [
      [2, 1, 4],
      [3, 1],
    ],
    [[1], [2, 3]],
    [[], [2, 2]],
  ];

  describe.each(BINARY)("%s", (name, op, ref) => {
    it.each(shapes)("broadcasts %j with %j and matches a naive loop", (sa, sb) => {
      const a = name === "pow" ? positive(sa, 1) : param(sa, 1);
      const b = param(sb, 2);
      const out = op(a, b);
      const outShape = ops.broadcastTo(a, out.shape).shape;
      expect(out.shape).toEqual(outShape);
      const A = ops.broadcastTo(a.detach(), out.shape).data as Float64Array;
      const B = ops.broadcastTo(b.detach(), out.shape).data as Float64Array;
      const y = out.data as Float64Array;
      for (let i = 0; i < y.length; i++) expect(y[i]).toBeCloseTo(ref(A[i], B[i]), 12);
    });

    it.each(shapes)("has finite-difference gradients for %j and %j", (sa, sb) => {
      const a = name === "pow" ? positive(sa, 3) : param(sa, 3);
      const b = param(sb, 4);
      gradcheck(op, [a, b]);
    });

    it("accepts JS numbers on either side", () => {
      const a = name === "pow" ? positive([3], 5) : param([3], 5);
      gradcheck((x) => op(x, 1.5 as unknown as Tensor), [a]);
      const xs = a.data as Float64Array;
      const y = op(2 as unknown as Tensor, a).data as Float64Array;
      for (let i = 0; i < 3; i++) expect(y[i]).toBeCloseTo(ref(2, xs[i]), 12);
    });
  });

  it("splits the gradient of maximum/minimum evenly on ties", () => {
    const a = Tensor.from([1, 2], [2], "float64").requiresGrad_();
    const b = Tensor.from([1, 3], [2], "float64").requiresGrad_();
    ops.sum(ops.maximum(a, b)).backward();
    expect(a.grad!.toArray()).toEqual([0.5, 0]);
    expect(b.grad!.toArray()).toEqual([0.5, 1]);
  });

  it("promotes dtypes like PyTorch and sends gradients back in each input's dtype", () => {
    const a = randn([4], { seed: 1, dtype: "bfloat16" }).requiresGrad_();
    const b = randn([4], { seed: 2 }).requiresGrad_();
    const y = ops.mul(a, b);
    expect(y.dtype).toBe("float32");
    ops.sum(y).backward();
    expect(a.grad!.dtype).toBe("bfloat16");
    expect(b.grad!.dtype).toBe("float32");
    expect(ops.mul(a, 2.5).dtype).toBe("bfloat16");
    expect(ops.add(a, ops.cast(a, "float16")).dtype).toBe("float32");
    expect(ops.div(Tensor.from([3], [1], "int64"), 2).toArray()).toEqual([1.5]);
    expect(ops.add(Tensor.from([3], [1], "int64"), 2).dtype).toBe("int64");
  });

  it("computes 16-bit arithmetic in float32 and rounds once", () => {
    // 1 + 2^-9 is not a bfloat16; bf16(1) + bf16(2^-9) rounds back to 1 (tie to even).
    const one = Tensor.from([1], [1], "bfloat16");
    const tiny = Tensor.from([2 ** -9], [1], "bfloat16");
    expect(ops.add(one, tiny).toArray()).toEqual([1]);
    expect(ops.add(one, ops.mul(tiny, 3)).toArray()).toEqual([1 + 2 ** -7]);
  });

  it("names the op and both shapes when broadcasting fails", () => {
    const err = (() => {
      try {
        ops.add(randn([2, 3]), randn([4]));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as ShapeError).message).toMatch(/^add: cannot broadcast shapes \[2, 3\] and \[4\]/);
  });
});

describe("siluMul", () => {
  it("has finite-difference gradients for both inputs (float64)", () => {
    gradcheck((g, u) => ops.siluMul(g, u), [param([3, 7], 1, 3), param([3, 7], 2)]);
  });

  it.each(["float32", "bfloat16", "float16"] as const)(
    "gives exactly mul(silu(gate), up) and its gradients in %s",
    (dtype) => {
      const gate = randn([4, 33], { seed: 3, dtype, std: 3 });
      const up = randn([4, 33], { seed: 4, dtype });
      const dy = randn([4, 33], { seed: 5, dtype });
      const run = (f: (g: Tensor, u: Tensor) => Tensor) => {
        const g = gate.detach().requiresGrad_();
        const u = up.detach().requiresGrad_();
        const y = f(g, u);
        y.backward(dy);
        return [y, g.grad!, u.grad!].map((t) => Array.from(t.toFloat32Array()));
      };
      const fused = run(ops.siluMul);
      const separate = run((g, u) => ops.mul(ops.silu(g), u));
      // The native kernel's exponential may differ from the reference's in the last bit.
      const ulp = dtype === "float32" ? 2 ** -20 : dtype === "bfloat16" ? 2 ** -7 : 2 ** -10;
      for (let k = 0; k < 3; k++) {
        for (let i = 0; i < fused[k].length; i++) {
          expect(Math.abs(fused[k][i] - separate[k][i])).toBeLessThanOrEqual(
            ulp * Math.max(1, Math.abs(separate[k][i])),
          );
        }
      }
    },
  );

  it("falls back to mul(silu(gate), up) for broadcasting or mixed dtypes", () => {
    const gate = randn([2, 5], { seed: 1 });
    const up = randn([5], { seed: 2 });
    expect(Array.from(ops.siluMul(gate, up).toFloat32Array())).toEqual(
      Array.from(ops.mul(ops.silu(gate), up).toFloat32Array()),
    );
    expect(ops.siluMul(gate, gate.to("bfloat16")).dtype).toBe("float32");
  });
});

describe("comparisons, where, maskedFill", () => {
  it("compare with broadcasting into bool", () => {
    const a = Tensor.from([[1, 2, 3]], undefined, "float32");
    const b = Tensor.from([[2], [1]], undefined, "float32");
    expect(ops.lt(a, b).toArray()).toEqual([
      [true, false, false],
      [false, false, false],
    ]);
    expect(ops.ge(a, 2).toArray()).toEqual([[false, true, true]]);
    expect(ops.eq(a, b).dtype).toBe("bool");
  });

  it("where selects and routes gradients to the chosen side", () => {
    const cond = Tensor.from([true, false, true], [3], "bool");
    const a = param([2, 3], 1);
    const b = param([3], 2);
    gradcheck((x, y) => ops.where(cond, x, y), [a, b]);
    const y = ops.where(cond, a.detach(), b.detach()).toArray() as number[][];
    const A = a.toArray() as number[][];
    const B = b.toArray() as number[];
    expect(y[1]).toEqual([A[1][0], B[1], A[1][2]]);
  });

  it("maskedFill keeps the dtype and the gradient of unmasked places", () => {
    const x = param([2, 3], 4);
    const mask = Tensor.from([[false, true, false]], undefined, "bool");
    gradcheck((t) => ops.maskedFill(t, mask, -5), [x]);
    const bf = ops.maskedFill(x.detach().to("bfloat16"), mask, -Infinity);
    expect(bf.dtype).toBe("bfloat16");
    expect((bf.toArray() as number[][])[0][1]).toBe(-Infinity);
  });

  it("rejects non-bool conditions and masks that would enlarge the input", () => {
    expect(() => ops.where(randn([2]), 1, 0)).toThrow(DTypeError);
    expect(() =>
      ops.maskedFill(
        randn([3]),
        Tensor.from([[true, false, true]], undefined, "bool").reshape([1, 3]),
        0,
      ),
    ).toThrow(/maskedFill: mask of shape \[1, 3\] would enlarge the input of shape \[3\]/);
  });
});

describe("cast", () => {
  it("rounds to nearest even and carries gradients back in the source dtype", () => {
    const x = Tensor.from([1 + 2 ** -8, 1 + 3 * 2 ** -8], [2], "float32").requiresGrad_();
    const y = ops.cast(x, "bfloat16");
    expect(y.toArray()).toEqual([1, 1 + 2 ** -6]);
    ops.sum(ops.mul(y, 3)).backward();
    expect(x.grad!.dtype).toBe("float32");
    expect(x.grad!.toArray()).toEqual([3, 3]);
  });

  it("truncates floats toward zero into integers and is a no-op for the same dtype", () => {
    expect(ops.cast(Tensor.from([-1.7, 2.9], [2], "float32"), "int32").toArray()).toEqual([-1, 2]);
    expect(ops.cast(Tensor.from([0, 3], [2], "float32"), "bool").toArray()).toEqual([false, true]);
    const t = randn([2]);
    expect(ops.cast(t, "float32")).toBe(t);
  });

  it("converts between float16 and bfloat16 through float32", () => {
    const h = Tensor.from([65504, 1e-7, -2.5], [3], "float16");
    const b = h.to("bfloat16");
    expect(b.toArray()).toEqual(Tensor.from(h.toFloat32Array(), [3], "bfloat16").toArray());
  });

  it("works inside autocast like any other op", () => {
    const x = randn([2, 2]);
    expect(autocast("bfloat16", () => ops.add(x, 1)).dtype).toBe("float32");
  });
});
