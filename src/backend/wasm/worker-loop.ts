import { JOB } from "./job.js";

/**
 * A matmul worker's loop, as the source of a function of its WorkerSetup: it joins the
 * main thread's instance on the shared memory, counts itself in at `ready`, sleeps on
 * JOB.SEQ and each time the main thread bumps it, claims chunks until the job has none left. A trap is reported through
 * JOB.FAILED and counted as a finished chunk, so the main thread never waits for a chunk
 * that will not finish. Node's and browsers' workers run the same loop.
 */
export const WORKER_LOOP = `({ module, memory, job, work, stack, ready }) => {
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  exports.__stack_pointer.value = stack;
  Atomics.add(new Int32Array(memory.buffer, ready, 1), 0, 1);
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
}`;
