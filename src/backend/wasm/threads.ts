import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { BackendError } from "../../errors.js";
import type { WasmMemory, WasmModule } from "./api.js";
import { JOB } from "./job.js";

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
}

// The worker's whole program. It is evaluated from a string so that it runs the same
// from src/ (TypeScript under vitest or tsx) and from dist/, and it loads worker_threads
// with import(), which works whether Node evaluates it as a CommonJS script or, when the
// process runs with --input-type=module, as an ES module. It sleeps on JOB.SEQ and each
// time the main thread bumps it, claims chunks until the job has none left. A trap is
// reported through JOB.FAILED and counted as a finished chunk, so the main thread never
// waits for a chunk that will not finish.
const WORKER_SOURCE = `
import("node:worker_threads").then(({ workerData }) => {
  const { module, memory, job, work, stack } = workerData;
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  exports.__stack_pointer.value = stack;
  const words = new Int32Array(memory.buffer, job, ${JOB.WORDS});
  let seen = 0;
  for (;;) {
    Atomics.wait(words, ${JOB.SEQ}, seen);
    seen = Atomics.load(words, ${JOB.SEQ});
    try {
      exports.peft_run(job, work);
    } catch {
      Atomics.store(words, ${JOB.FAILED}, 1);
      Atomics.add(words, ${JOB.FINISHED}, 1);
      Atomics.notify(words, ${JOB.FINISHED});
    }
  }
});
`;

/**
 * Starts one worker per setup. Workers are unreferenced: a process whose only remaining
 * work is a sleeping matmul worker exits. A worker that fails to start only means fewer
 * hands (chunks are claimed, never assigned, so the other threads take its share), and
 * a warning says so.
 */
export function spawnWorkers(setups: readonly WorkerSetup[]): Worker[] {
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
