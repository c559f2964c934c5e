import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { BackendError } from "../../errors.js";
import { randn } from "../../tensor/creation.js";
import { Generator } from "../../tensor/random.js";
import { Tensor } from "../../tensor/tensor.js";
import type { Backend } from "../backend.js";
import type { FloatDType, Storage } from "../dtype.js";
import { f32ArrayToBf16 } from "../half.js";
import { referenceBackend } from "../reference/index.js";
import { availableBackends, getBackend, setBackend } from "../registry.js";
import { webAssembly } from "./api.js";
import { createWasmBackend, wasmBackend } from "./index.js";
import { Arena } from "./memory.js";
import { planChunks } from "./plan.js";
import { threadCount } from "./threads.js";

interface Case {
  m: number;
  k: number;
  n: number;
  transA: boolean;
  transB: boolean;
  batchA: number[];
  batchB: number[];
}

/** The broadcast batch shape (aligned from the right, as NumPy and PyTorch do). */
function batchOf(c: Case): number[] {
  const n = Math.max(c.batchA.length, c.batchB.length);
  return Array.from({ length: n }, (_, j) =>
    Math.max(c.batchA[j - n + c.batchA.length] ?? 1, c.batchB[j - n + c.batchB.length] ?? 1),
  );
}

function operands(c: Case, i: number, dtype: FloatDType) {
  const aShape = [...c.batchA, ...(c.transA ? [c.k, c.m] : [c.m, c.k])];
  const bShape = [...c.batchB, ...(c.transB ? [c.n, c.k] : [c.k, c.n])];
  return {
    a: randn(aShape, { seed: 2 * i, dtype }),
    b: randn(bShape, { seed: 2 * i + 1, dtype }),
  };
}

function product(backend: Backend, c: Case, i: number, dtype: FloatDType): Storage {
  const { a, b } = operands(c, i, dtype);
  return backend.matmul(a.data, a.shape, b.data, b.shape, c.transA, c.transB, batchOf(c), dtype);
}

/** sum over k of |a_ik| |b_kj| for each output: the scale of a dot product's rounding error. */
function absProduct(c: Case, i: number, dtype: FloatDType): Float32Array {
  const { a, b } = operands(c, i, dtype);
  const abs = (x: Tensor) => Float64Array.from(x.toFloat32Array(), Math.abs);
  const batch = batchOf(c);
  const s = referenceBackend.matmul(
    abs(a),
    a.shape,
    abs(b),
    b.shape,
    c.transA,
    c.transB,
    batch,
    "float64",
  );
  return Float32Array.from(s as Float64Array);
}

const asF32 = (s: Storage, c: Case, dtype: FloatDType) =>
  new Tensor(s, [...batchOf(c), c.m, c.n], dtype).toFloat32Array();

// Random odd sizes as in the native backend's test, then the shapes with awkward edges
// for a 4 x 8 tile and 8-wide chunks, each with every transpose, then products large
// enough to be cut into chunks for two threads, with broadcast batches.
const g = new Generator(7);
const dim = () => 1 + (g.nextUint32() % 37);
const CASES: Case[] = [
  ...Array.from({ length: 24 }, (_, i) => ({
    m: dim(),
    k: dim(),
    n: dim(),
    transA: i % 2 === 1,
    transB: i % 4 >= 2,
    batchA: i % 3 === 0 ? [2, 1] : i % 3 === 1 ? [3] : [],
    batchB: i % 3 === 0 ? [1, 3] : [],
  })),
  ...[
    [1, 1, 1],
    [7, 13, 5],
    [33, 65, 17],
    [130, 257, 66],
    [1, 300, 257],
    [67, 1, 45],
    [5, 600, 3],
  ].flatMap(([m, k, n]) =>
    [0, 1, 2, 3].map((t) => ({
      m,
      k,
      n,
      transA: (t & 1) === 1,
      transB: (t & 2) === 2,
      batchA: [],
      batchB: [],
    })),
  ),
  { m: 96, k: 70, n: 81, transA: false, transB: true, batchA: [2, 1], batchB: [3] },
  { m: 45, k: 64, n: 200, transA: true, transB: false, batchA: [], batchB: [4] },
  { m: 300, k: 40, n: 36, transA: false, transB: false, batchA: [2], batchB: [2] },
];

const BACKENDS = [
  { threads: 1, backend: createWasmBackend({ threads: 1 }) },
  { threads: 2, backend: createWasmBackend({ threads: 2 }) },
];

describe.runIf(wasmBackend !== null)("wasm backend against the reference backend", () => {
  describe.each(BACKENDS)("$threads thread(s)", ({ backend }) => {
    it.each(["float32", "bfloat16"] as FloatDType[])(
      "matmul in %s on odd shapes, transposes and broadcast batches",
      (dtype) => {
        for (const [i, c] of CASES.entries()) {
          const want = asF32(product(referenceBackend, c, i, dtype), c, dtype);
          const got = asF32(product(backend!, c, i, dtype), c, dtype);
          const scale = absProduct(c, i, dtype);
          expect(got.length).toBe(want.length);
          // A float32 sum of K products in any order (fused or not) is within (K + 1)
          // units of 2^-24 of sum |a| |b| of the exact value, which the reference (float64
          // sums) rounds once; near-zero outputs of long sums need this scale, not |C|.
          // bfloat16 adds at most one ulp of the output (2^-7 relative) to that.
          for (let j = 0; j < want.length; j++) {
            const f32 = (c.k + 2) * 2 ** -24 * scale[j];
            const tol = dtype === "float32" ? f32 : f32 + 2 ** -7 * Math.abs(want[j]);
            expect(Math.abs(got[j] - want[j]), `case ${i} element ${j}`).toBeLessThanOrEqual(tol);
          }
        }
      },
    );

    it("rounds a bfloat16 product once, from the float32 product of the widened operands", () => {
      for (const [i, c] of CASES.entries()) {
        const { a, b } = operands(c, i, "bfloat16");
        const [a32, b32] = [a.toFloat32Array(), b.toFloat32Array()];
        const batch = batchOf(c);
        const wide = backend!.matmul(
          a32,
          a.shape,
          b32,
          b.shape,
          c.transA,
          c.transB,
          batch,
          "float32",
        );
        const bf = backend!.matmul(
          a.data,
          a.shape,
          b.data,
          b.shape,
          c.transA,
          c.transB,
          batch,
          "bfloat16",
        );
        expect(Array.from(bf as Uint16Array), `case ${i}`).toEqual(
          Array.from(f32ArrayToBf16(wide as Float32Array)),
        );
      }
    });

    it("leaves float64 and float16 to the reference kernels", () => {
      for (const dtype of ["float64", "float16"] as FloatDType[]) {
        const c = CASES[3];
        expect(Array.from(product(backend!, c, 3, dtype) as ArrayLike<number>)).toEqual(
          Array.from(product(referenceBackend, c, 3, dtype) as ArrayLike<number>),
        );
      }
    });

    it("returns empty products and all-zero ones for K = 0", () => {
      const zeroK: Case = {
        m: 3,
        k: 0,
        n: 5,
        transA: false,
        transB: false,
        batchA: [],
        batchB: [],
      };
      expect(Array.from(asF32(product(backend!, zeroK, 0, "float32"), zeroK, "float32"))).toEqual(
        new Array(15).fill(0),
      );
      const empty: Case = {
        m: 0,
        k: 4,
        n: 5,
        transA: false,
        transB: true,
        batchA: [2],
        batchB: [],
      };
      expect(product(backend!, empty, 0, "bfloat16").length).toBe(0);
    });
  });

  it("gives bit-identical results on 1 and 2 threads (chunks never change a sum's order)", () => {
    const [one, two] = BACKENDS.map((b) => b.backend!);
    for (const dtype of ["float32", "bfloat16"] as FloatDType[]) {
      for (const [i, c] of CASES.entries()) {
        expect(Array.from(product(two, c, i, dtype) as ArrayLike<number>), `case ${i}`).toEqual(
          Array.from(product(one, c, i, dtype) as ArrayLike<number>),
        );
      }
    }
  });

  it("hands chunks of large products to the worker thread", () => {
    const two = BACKENDS[1].backend!;
    const a = randn([256, 256], { seed: 1 });
    // The worker starts with the first large product and joins once it is up.
    const deadline = Date.now() + 20_000;
    while (two.workerChunks() === 0 && Date.now() < deadline) {
      two.matmul(a.data, a.shape, a.data, a.shape, false, false, [], "float32");
    }
    expect(two.workerChunks()).toBeGreaterThan(0);
    expect(BACKENDS[0].backend!.workerChunks()).toBe(0);
  });

  it("starts its workers on request, counts them as they join, and computes as before", async () => {
    const three = createWasmBackend({ threads: 3 })!;
    expect(three.threadsJoined()).toBe(1);
    await expect(three.start()).resolves.toBe(3);
    expect(three.threadsJoined()).toBe(3);
    await expect(three.start()).resolves.toBe(3);
    const a = randn([256, 256], { seed: 1 });
    const square = (on: Backend) =>
      on.matmul(a.data, a.shape, a.data, a.shape, false, false, [], "float32");
    expect(square(three)).toEqual(square(BACKENDS[0].backend!));
    const one = createWasmBackend({ threads: 1 })!;
    await expect(one.start()).resolves.toBe(1);
  });

  it("is registered, selectable by name, and serves matmul through the op layer", () => {
    expect(availableBackends()).toContain("wasm");
    const previous = getBackend().name;
    try {
      expect(setBackend("wasm").name).toBe("wasm");
      const a = randn([9, 70], { seed: 1 });
      const b = randn([70, 11], { seed: 2 });
      expect(
        getBackend().matmul(a.data, a.shape, b.data, b.shape, false, false, [], "float32"),
      ).toBeInstanceOf(Float32Array);
    } finally {
      setBackend(previous);
    }
  });

  it("lets a process (an ES module script) use two threads and exit on its own", () => {
    const root = fileURLToPath(new URL("../../../", import.meta.url));
    const script = `
      import { createWasmBackend } from "./src/backend/wasm/index.ts";
      const backend = createWasmBackend({ threads: 2 });
      const a = new Float32Array(200 * 300).fill(1);
      let c;
      const deadline = Date.now() + 20000;
      do c = backend.matmul(a, [200, 300], a, [300, 200], false, false, [], "float32");
      while (backend.workerChunks() === 0 && Date.now() < deadline);
      console.log(c[0], c.length, backend.workerChunks() > 0);
    `;
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: root,
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(out.trim()).toBe("300 40000 true");
  });
});

describe("wasm backend pieces", () => {
  const env = process.env.PEFT_THREADS;
  afterEach(() => {
    if (env === undefined) delete process.env.PEFT_THREADS;
    else process.env.PEFT_THREADS = env;
  });

  it("rejects a thread count that is not a positive integer", () => {
    expect(() => createWasmBackend({ threads: 0 })).toThrow(BackendError);
    expect(() => createWasmBackend({ threads: 1.5 })).toThrow(/positive integer/);
  });

  it("reads PEFT_THREADS and rejects what is not a thread count", () => {
    process.env.PEFT_THREADS = "3";
    expect(threadCount()).toBe(3);
    delete process.env.PEFT_THREADS;
    expect(threadCount()).toBeGreaterThanOrEqual(1);
    expect(threadCount()).toBeLessThanOrEqual(2);
    for (const bad of ["0", "two", "1.5"]) {
      process.env.PEFT_THREADS = bad;
      expect(() => threadCount()).toThrow(BackendError);
    }
  });

  it("cuts products into chunks that cover them, on tile boundaries", () => {
    for (const [M, N, K, count] of [
      [512, 768, 768, 1],
      [2048, 3072, 768, 1],
      [1, 50000, 576, 1],
      [100, 37, 64, 6],
      [8, 8, 8, 1],
    ]) {
      const plan = planChunks(M, N, K, count, 2);
      const dim = plan.splitRows ? M : N;
      expect(plan.block * plan.blocks).toBeGreaterThanOrEqual(dim);
      expect(plan.block * (plan.blocks - 1)).toBeLessThan(dim);
      if (plan.blocks > 1) expect(plan.block % 8).toBe(0);
    }
    expect(planChunks(512, 768, 768, 1, 1).parallel).toBe(false);
    expect(planChunks(16, 16, 16, 1, 2).parallel).toBe(false);
    expect(planChunks(512, 768, 768, 1, 2).parallel).toBe(true);
  });

  it.runIf(webAssembly !== undefined)(
    "grows its memory on demand and names the failure when it cannot",
    () => {
      const memory = new webAssembly!.Memory({ initial: 1, maximum: 3, shared: true });
      const arena = new Arena(memory, 0);
      const first = arena.alloc(100_000);
      expect(memory.buffer.byteLength).toBe(2 * 65536);
      const mark = arena.mark();
      arena.alloc(60_000);
      arena.release(mark);
      expect(arena.alloc(10)).toBe(Math.ceil((first + 100_000) / 64) * 64);
      expect(() => arena.alloc(200_000)).toThrow(BackendError);
      expect(() => arena.alloc(200_000)).toThrow(/could not grow WebAssembly memory/);
    },
  );
});
