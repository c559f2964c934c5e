import { BackendError } from "../../errors.js";
import { type WasmMemory, webAssembly } from "./api.js";
import { FLAG_BF16, FLAG_TRANS_A, FLAG_TRANS_B, JOB, JOB_CLOSED } from "./job.js";
import { Arena, createSharedMemory } from "./memory.js";
import type { GemmModule, ModuleExports } from "./module.js";
import { planChunks } from "./plan.js";
import { type GemmWorker, spawnWorkers } from "./threads.js";

/** `count` products op(A)[M,K] · op(B)[K,N]; product t reads A matrix aIndex[t] and B matrix bIndex[t]. */
export interface Product {
  a: Float32Array | Uint16Array;
  b: Float32Array | Uint16Array;
  aIndex: Int32Array;
  bIndex: Int32Array;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** bfloat16 operands and result (float32 accumulation); else float32. */
  bf16: boolean;
}

// The module asks for 2 pages (its static data and the main thread's C stack).
const INITIAL_PAGES = 2;
/** Shared products after which, with still no worker joined, the caller is told why. */
const UNJOINED_WARNING = 200;
// The kernels keep everything in locals, so a worker's C stack only has to exist.
const STACK_BYTES = 64 * 1024;

// Workers hold the memory and the module, not the WasmGemm that started them: when a
// WasmGemm is collected they would sleep on its job block forever, so they end with it.
const endWorkers = new FinalizationRegistry<GemmWorker[]>((workers) => {
  for (const worker of workers) void worker.terminate();
});

/**
 * One instance of the gemm module on a shared memory, and the workers that join it.
 * Operands are copied into the memory for each call and the result copied out, so no
 * JavaScript array ever aliases wasm memory.
 */
export class WasmGemm {
  private readonly memory: WasmMemory;
  private readonly exports: ModuleExports;
  private readonly arena: Arena;
  /** Byte offset of the job block, and a view of it (it sits below any growth, so stays valid). */
  private readonly job: number;
  private readonly words: Int32Array;
  /** Each thread's workspace; [0] is the calling thread's. */
  private readonly works: number[];
  private readonly stacks: number[];
  /** Where per-call operands start. */
  private readonly operands: number;
  /** The workers that have joined (an Int32 in the shared memory they add to). */
  private readonly joined: Int32Array;
  private workers: GemmWorker[] | null = null;
  /** Chunks the workers have computed so far (they join when they are up, not at once). */
  chunksByWorkers = 0;
  /** Products shared out while no worker had joined; a warning is given at UNJOINED_WARNING. */
  private unjoinedProducts = 0;

  constructor(
    private readonly gemm: GemmModule,
    readonly threads: number,
  ) {
    this.memory = createSharedMemory(INITIAL_PAGES);
    const instance = new webAssembly!.Instance(gemm.module, { env: { memory: this.memory } });
    this.exports = instance.exports as unknown as ModuleExports;
    if (this.exports.peft_job_words() !== JOB.WORDS) {
      throw new BackendError(
        "wasm backend: the gemm module's job layout does not match src/backend/wasm/job.ts (rebuild it with `npm run build:wasm`)",
      );
    }
    this.arena = new Arena(this.memory, this.exports.__heap_base.value);
    this.job = this.arena.alloc(JOB.WORDS * 4);
    const workBytes = this.exports.peft_gemm_workspace();
    this.works = Array.from({ length: threads }, () => this.arena.alloc(workBytes));
    this.stacks = Array.from(
      { length: threads - 1 },
      () => this.arena.alloc(STACK_BYTES) + STACK_BYTES,
    );
    this.joined = new Int32Array(this.memory.buffer, this.arena.alloc(4), 1);
    this.operands = this.arena.mark();
    this.words = new Int32Array(this.memory.buffer, this.job, JOB.WORDS);
    Atomics.store(this.words, JOB.CLAIM, JOB_CLOSED);
  }

  run(p: Product): Float32Array | Uint16Array {
    const { M, N, K, bf16 } = p;
    const count = p.aIndex.length;
    const size = count * M * N;
    if (size === 0) return bf16 ? new Uint16Array(0) : new Float32Array(0);

    const arena = this.arena;
    arena.release(this.operands);
    const bytes = bf16 ? 2 : 4;
    const a = arena.alloc(p.a.length * bytes);
    const b = arena.alloc(p.b.length * bytes);
    const acc = arena.alloc(size * 4);
    const out = bf16 ? arena.alloc(size * 2) : 0;
    const aIndex = arena.alloc(count * 4);
    const bIndex = arena.alloc(count * 4);
    // Only now, after any growth, is memory.buffer the whole memory.
    const buffer = this.memory.buffer;
    copyInto(buffer, a, p.a, bf16);
    copyInto(buffer, b, p.b, bf16);
    new Int32Array(buffer, aIndex, count).set(p.aIndex);
    new Int32Array(buffer, bIndex, count).set(p.bIndex);

    const plan = planChunks(M, N, K, count, this.threads);
    const w = this.words;
    w[JOB.A] = a;
    w[JOB.B] = b;
    w[JOB.ACC] = acc;
    w[JOB.OUT] = out;
    w[JOB.A_INDEX] = aIndex;
    w[JOB.B_INDEX] = bIndex;
    w[JOB.M] = M;
    w[JOB.N] = N;
    w[JOB.K] = K;
    w[JOB.FLAGS] =
      (p.transA ? FLAG_TRANS_A : 0) | (p.transB ? FLAG_TRANS_B : 0) | (bf16 ? FLAG_BF16 : 0);
    w[JOB.BLOCKS] = plan.blocks;
    w[JOB.BLOCK] = plan.block;
    w[JOB.SPLIT_ROWS] = plan.splitRows ? 1 : 0;
    w[JOB.FAILED] = 0;
    w[JOB.FINISHED] = 0;
    const chunks = count * plan.blocks;
    w[JOB.CHUNKS] = chunks;
    // Opening the claim counter publishes everything written above.
    Atomics.store(w, JOB.CLAIM, 0);
    if (plan.parallel) {
      this.wakeWorkers();
      if (this.threadsJoined() === 1 && ++this.unjoinedProducts === UNJOINED_WARNING) {
        console.warn(
          `wasm backend: ${UNJOINED_WARNING} products have run on one thread because no matmul worker has started; in a browser, a worker starts only while the thread that made it is idle, so \`await startBackend()\` before a long synchronous run (a training loop)`,
        );
      }
    }
    let own: number;
    try {
      own = this.exports.peft_run(this.job, this.works[0]);
    } catch (e) {
      // Stop handing out chunks and let the workers finish the ones they hold (all
      // claimed chunks but the one that trapped here) before the memory is reused.
      const claimed = Math.min(Atomics.exchange(w, JOB.CLAIM, JOB_CLOSED), chunks);
      this.waitFinished(claimed - 1);
      throw new BackendError(`wasm backend: the matmul kernel trapped: ${(e as Error).message}`);
    }
    // Workers may still be computing chunks they claimed: wait for the last one.
    this.waitFinished(chunks);
    Atomics.store(w, JOB.CLAIM, JOB_CLOSED);
    this.chunksByWorkers += chunks - own;
    if (Atomics.load(w, JOB.FAILED) !== 0) {
      throw new BackendError("wasm backend: a worker thread trapped while computing a matmul");
    }
    const result = this.memory.buffer;
    return bf16
      ? new Uint16Array(result, out, size).slice()
      : new Float32Array(result, acc, size).slice();
  }

  /**
   * The module's exports, with its memory above the GEMM's own blocks free for one call
   * of a kernel on the calling thread (the memory is reused by the next call of anything).
   */
  scratch(): { arena: Arena; memory: WasmMemory; exports: ModuleExports } {
    this.arena.release(this.operands);
    return { arena: this.arena, memory: this.memory, exports: this.exports };
  }

  private waitFinished(chunks: number): void {
    const w = this.words;
    for (let done = Atomics.load(w, JOB.FINISHED); done < chunks; ) {
      Atomics.wait(w, JOB.FINISHED, done);
      done = Atomics.load(w, JOB.FINISHED);
    }
  }

  /** Threads that take chunks of a product now: the caller and the workers that have joined. */
  threadsJoined(): number {
    return 1 + Atomics.load(this.joined, 0);
  }

  /**
   * Starts the workers and resolves once they have all joined, or after `timeoutMs` with
   * those that have. A browser starts a worker's thread only while the thread that made
   * it returns to its event loop, so a worker made by a product inside a long synchronous
   * run (a training loop) joins only after it: awaiting this first gives that run every thread.
   */
  async start(timeoutMs = 30_000): Promise<number> {
    if (this.threads > 1) this.spawnWorkers();
    const until = Date.now() + timeoutMs;
    while (this.threadsJoined() < this.threads && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return this.threadsJoined();
  }

  private spawnWorkers(): void {
    if (this.workers !== null) return;
    this.workers = spawnWorkers(
      this.stacks.map((stack, i) => ({
        module: this.gemm.module,
        memory: this.memory,
        job: this.job,
        work: this.works[i + 1],
        stack,
        ready: this.joined.byteOffset,
      })),
    );
    endWorkers.register(this, this.workers);
  }

  private wakeWorkers(): void {
    this.spawnWorkers();
    Atomics.add(this.words, JOB.SEQ, 1);
    Atomics.notify(this.words, JOB.SEQ);
  }
}

function copyInto(
  buffer: SharedArrayBuffer,
  at: number,
  src: Float32Array | Uint16Array,
  bf16: boolean,
): void {
  if (bf16) new Uint16Array(buffer, at, src.length).set(src);
  else new Float32Array(buffer, at, src.length).set(src);
}
