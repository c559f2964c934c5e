import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { BackendError } from "../../errors.js";
import type { WasmMemory, WasmModule } from "./api.js";
import { WORKER_LOOP } from "./worker-loop.js";

/** Threads a wasm matmul uses: PEFT_THREADS, else min(2, the cores this process may use). */
export function threadCount(): number {
  const raw = globalThis.process?.env?.PEFT_THREADS;
  if (raw === undefined || raw.trim() === "") {
    return Math.max(1, Math.min(2, availableParallelism()));
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new BackendError(`PEFT_THREADS: expected an integer from 1 to 256, got "${raw}"`);
  }
  return n;
}

/** A started worker, as the matmul ends it. */
export interface GemmWorker {
  terminate(): unknown;
}

/** What a worker needs to join the main thread's instance on the shared memory. */
export interface WorkerSetup {
  module: WasmModule;
  memory: WasmMemory;
  /** Byte offset of the job block. */
  job: number;
  /** This thread's packing workspace. */
  work: number;
  /** Top of this thread's C stack. */
  stack: number;
  /** Byte offset of the counter a worker adds 1 to once it has joined. */
  ready: number;
}

// The worker's whole program, from a string so that it runs the same from src/ (TypeScript
// under vitest or tsx) and from dist/. It loads worker_threads with import(), which works
// whether Node evaluates it as a CommonJS script or, when the process runs with
// --input-type=module, as an ES module.
const WORKER_SOURCE = `import("node:worker_threads").then(({ workerData }) => (${WORKER_LOOP})(workerData));`;

/**
 * Starts one worker per setup. Workers are unreferenced: a process whose only remaining
 * work is a sleeping matmul worker exits. A worker that fails to start only means fewer
 * hands (chunks are claimed, never assigned, so the other threads take its share), and
 * a warning says so.
 */
export function spawnWorkers(setups: readonly WorkerSetup[]): GemmWorker[] {
  return setups.map((workerData) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    worker.on("error", (e) => {
      process.emitWarning(
        `wasm backend: a matmul worker thread stopped (${e.message}); products continue on the remaining threads`,
      );
    });
    worker.unref();
    return worker;
  });
}
