import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { poisonedNative } from "../../../test/helpers/poisoned-native.js";
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
  // The last case has k = 0: the product is all zeros, written as such.
  const cases = Array.from({ length: 25 }, (_, i) => {
    const [m, k, n] = [dim(), i === 24 ? 0 : dim(), dim()];
    const batchA = i % 3 === 0 ? [2, 1] : i % 3 === 1 ? [3] : [];
    const batchB = i % 3 === 0 ? [1, 3] : i % 3 === 1 ? [] : [];
    return { m, k, n, transA: i % 2 === 1, transB: i % 4 >= 2, batchA, batchB };
  });

  const runs = (["float32", "bfloat16", "float16"] as FloatDType[]).flatMap((dtype) => [
    { dtype, outputs: "zeroed", backend: nativeBackend! },
    { dtype, outputs: "unzeroed", backend: poisonedNative! },
  ]);
  it.each(runs)(
    "matmul in $dtype on random odd shapes, transposes and broadcast batches ($outputs outputs)",
    ({ dtype, backend }) => {
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
          backend.matmul(a.data, a.shape, b.data, b.shape, c.transA, c.transB, batch, dtype),
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

  it("multiplies bfloat16 widened to float32 where oneDNN has no bfloat16 matmul (AVX2)", () => {
    // ONEDNN_MAX_CPU_ISA makes oneDNN, in a child process, treat this CPU as AVX2 only.
    const addonPath = createRequire(import.meta.url).resolve(
      "../../../build/Release/peft_native.node",
    );
    const [m, k, n] = [37, 53, 29];
    const a = randn([m, k], { seed: 11, dtype: "bfloat16" });
    const b = randn([n, k], { seed: 12, dtype: "bfloat16" });
    const script = `
      const addon = require(${JSON.stringify(addonPath)});
      const [a, b] = ${JSON.stringify([a.data, b.data].map((d) => Array.from(d as Uint16Array)))}.map((v) => Uint16Array.from(v));
      const c = new Uint16Array(${m * n});
      addon.matmul(1, false, true, ${m}, ${n}, ${k}, a, b, c);
      let packs = true;
      try { addon.packWeight(1, ${n}, ${k}, b); } catch { packs = false; }
      console.log(JSON.stringify({ info: addon.info(), packs, c: Array.from(c) }));
    `;
    const run = spawnSync(process.execPath, ["-e", script], {
      env: { ...process.env, ONEDNN_MAX_CPU_ISA: "AVX2" },
      encoding: "utf8",
    });
    expect(run.stderr).toBe("");
    const out = JSON.parse(run.stdout) as {
      info: { isa: string; bf16Matmul: boolean };
      packs: boolean;
      c: number[];
    };
    expect(out.info).toMatchObject({ isa: "avx2", bf16Matmul: false });
    expect(out.packs).toBe(false);
    const got = new Tensor(Uint16Array.from(out.c), [m, n], "bfloat16").toFloat32Array();
    const want = new Tensor(
      referenceBackend.matmul(a.data, a.shape, b.data, b.shape, false, true, [], "bfloat16"),
      [m, n],
      "bfloat16",
    ).toFloat32Array();
    for (let j = 0; j < want.length; j++)
      expect(Math.abs(got[j] - want[j]), `element ${j}`).toBeLessThanOrEqual(
        2 ** -7 * Math.max(1, Math.abs(want[j]) * Math.sqrt(k)),
      );
  });

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

describe.runIf(nativeBackend !== null)("the addon on several threads at once", () => {
  it("gives each worker thread the same primitive-run and packed products as one thread alone", async () => {
    const { Worker } = await import("node:worker_threads");
    const { fileURLToPath } = await import("node:url");
    const addonPath = fileURLToPath(
      new URL("../../../build/Release/peft_native.node", import.meta.url),
    );
    // 80 shapes, more than the addon caches primitives for, so threads evict and recreate
    // them while others run; each product is checked with a sum of its bits. bfloat16 runs
    // on primitives where oneDNN has a bfloat16 matmul; elsewhere packed float32 does.
    const body = `
      const addon = require(${JSON.stringify(addonPath)});
      const bf16 = addon.info().bf16Matmul;
      const T = bf16 ? Uint16Array : Float32Array;
      const value = (i) => (bf16 ? 0x3c00 + (i % 512) : 1 + (i % 512) / 256);
      const sums = [];
      for (let round = 0; round < 3; round++) {
        for (let s = 0; s < 80; s++) {
          const m = 1 + (s % 7) * 9, n = 8 + s, k = 16 + (s % 5) * 8;
          const a = new T(m * k).map((_, i) => value(i * 7 + s));
          const w = new T(n * k).map((_, i) => value(i * 13 + s));
          const c = new T(m * n);
          addon.matmul(bf16 ? 1 : 0, false, true, m, n, k, a, w, c);
          const p = new T(m * n);
          addon.matmulPacked(bf16 ? 1 : 0, m, n, k, a, addon.packWeight(bf16 ? 1 : 0, n, k, w), p);
          const cb = new Uint16Array(c.buffer), pb = new Uint16Array(p.buffer);
          let sum = 0;
          for (let i = 0; i < cb.length; i++) sum = (sum * 31 + cb[i] + pb[i] * 7) % 1000000007;
          sums.push(sum);
        }
      }
      return sums;
    `;
    const alone = new Function("require", body)(createRequire(import.meta.url)) as number[];
    const run = () =>
      new Promise<number[]>((resolve, reject) => {
        const worker = new Worker(
          `const { parentPort } = require("node:worker_threads");
           parentPort.postMessage((() => { ${body} })());`,
          { eval: true },
        );
        worker.once("message", resolve);
        worker.once("error", reject);
      });
    const [first, second] = await Promise.all([run(), run()]);
    expect(first).toEqual(alone);
    expect(second).toEqual(alone);
  });
});
