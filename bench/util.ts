import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { getBackend } from "../src/backend/registry.js";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Wall time of one call of fn, in seconds. */
export function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Median wall time in seconds of fn over `runs` runs after `warmup` unmeasured ones. */
export function timeIt(fn: () => void, runs: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  return median(Array.from({ length: runs }, () => seconds(fn)));
}

/** The fastest of `runs` calls after `warmup`: what fn can take, for a floor. */
export function fastestOf(fn: () => void, runs: number, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  return Math.min(...Array.from({ length: runs }, () => seconds(fn)));
}

/**
 * The Python with PyTorch: PEFT_BENCH_PYTHON, else Debian's /usr/bin/python3 (where
 * python3-torch installs), else python3 on the PATH; null if none imports torch.
 */
export function torchPython(): string | null {
  const candidates = [process.env.PEFT_BENCH_PYTHON, "/usr/bin/python3", "python3"].filter(
    (p): p is string => p !== undefined && (p === "python3" || existsSync(p)),
  );
  for (const py of candidates) {
    try {
      execFileSync(py, ["-c", "import torch"], { stdio: "ignore" });
      return py;
    } catch {
      // try the next one
    }
  }
  return null;
}

/**
 * Debian's OpenMP build of OpenBLAS, where it is installed (libopenblas0-openmp). The
 * default pthread build runs its own threads against torch's OpenMP pool and makes the
 * peer up to 2x slower, so the peer is pointed at this one.
 */
function openmpBlasDir(): string | null {
  for (const arch of ["x86_64-linux-gnu", "aarch64-linux-gnu"]) {
    const dir = `/usr/lib/${arch}/openblas-openmp`;
    if (existsSync(dir)) return dir;
  }
  return null;
}

/** Runs bench/peer/<script> and parses the JSON it prints on its last line. */
export function runPeer<T>(script: string, args: string[]): T | null {
  const py = torchPython();
  if (py === null) {
    console.log("peer: PyTorch not found (install Debian's python3-torch); peer figures are null");
    return null;
  }
  const path = fileURLToPath(new URL(`./peer/${script}`, import.meta.url));
  const blas = openmpBlasDir();
  const env = { ...process.env };
  if (blas !== null) env.LD_LIBRARY_PATH = [blas, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  console.log(
    `peer: ${py} with ${blas === null ? "the default BLAS (install libopenblas0-openmp for the OpenMP build)" : `the OpenMP OpenBLAS in ${blas}`}`,
  );
  const out = execFileSync(py, [path, ...args], { encoding: "utf8", maxBuffer: 1 << 24, env });
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** One JSON line of a bench's result; `extra` fields (numbers rounded) follow the ratio. */
export function resultLine(
  bench: string,
  unit: string,
  ours: number,
  peer: number | null,
  extra: Record<string, number | string> = {},
): void {
  const round = (v: number) => Number(v.toPrecision(4));
  const rest = Object.fromEntries(
    Object.entries(extra).map(([k, v]) => [k, typeof v === "number" ? round(v) : v]),
  );
  console.log(
    JSON.stringify({
      bench,
      unit,
      ours: round(ours),
      peer: peer === null ? null : round(peer),
      ratio: peer === null ? null : round(ours / peer),
      ...rest,
    }),
  );
}

/** The value after `--name` in a bench's arguments, or the fallback. */
export function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

/**
 * Routes each call of the active backend's methods (those in `names`, else all) through
 * `wrap`, which gets the method's name, its arguments and the call itself; returns the undo.
 */
export function wrapBackend(
  wrap: (name: string, args: unknown[], call: () => unknown) => unknown,
  names?: readonly string[],
): () => void {
  const backend = getBackend();
  const target = backend as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = new Map<string, (...a: unknown[]) => unknown>();
  for (const name of names ?? Object.keys(target)) {
    const own = target[name];
    if (typeof own !== "function") continue;
    saved.set(name, own);
    target[name] = (...a: unknown[]) => wrap(name, a, () => own.apply(backend, a));
  }
  return () => {
    for (const [name, own] of saved) target[name] = own;
  };
}
