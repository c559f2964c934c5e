import type { FloatDType } from "../src/backend/dtype.js";
import { getBackend } from "../src/backend/registry.js";
import { randn } from "../src/tensor/creation.js";
import { matmul } from "../src/tensor/ops/matmul.js";
import { resultLine, runPeer, timeIt } from "./util.js";

type Case = [number, number, number];
const DEFAULT: Case[] = [[512, 768, 768]];
const DTYPES: FloatDType[] = ["float32", "bfloat16"];

/**
 * GFLOP/s of C[M,N] = A[M,K]·B[K,N] on the active backend (PEFT_BACKEND selects it),
 * beside torch.matmul on 2 threads. Shapes: "MxKxN" arguments, default 512x768x768.
 */
export function main(args: string[]): void {
  const cases: Case[] =
    args.length > 0 ? args.map((a) => a.split("x").map(Number) as Case) : DEFAULT;
  const backend = getBackend().name;
  const peer = runPeer<Record<string, number>>("matmul.py", [
    "--shapes",
    cases.map((c) => c.join("x")).join(","),
    "--dtypes",
    DTYPES.join(","),
  ]);
  console.log(`matmul on the ${backend} backend (median of runs, GFLOP/s)`);
  console.log("shape            dtype      ours      torch     ratio");
  let headline: [number, number | null] | null = null;
  for (const [M, K, N] of cases) {
    for (const dtype of DTYPES) {
      const a = randn([M, K], { seed: 1, dtype });
      const b = randn([K, N], { seed: 2, dtype });
      const flops = 2 * M * K * N;
      const runs = backend === "reference" ? 3 : 10;
      const seconds = timeIt(() => matmul(a, b), runs);
      const ours = flops / seconds / 1e9;
      const theirs = peer?.[`${M}x${K}x${N}:${dtype}`] ?? null;
      console.log(
        `${`${M}x${K}x${N}`.padEnd(16)} ${dtype.padEnd(9)} ${ours.toFixed(2).padStart(8)} ${(theirs?.toFixed(1) ?? "-").padStart(9)} ${(theirs ? (ours / theirs).toFixed(4) : "-").padStart(9)}`,
      );
      if (headline === null) headline = [ours, theirs];
    }
  }
  if (headline !== null) resultLine("matmul", "GFLOP/s", headline[0], headline[1]);
}
