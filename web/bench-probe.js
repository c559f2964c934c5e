// Milliseconds of single operations, run by bench/browser.ts (--probe) in a browser's
// worker and in Node alike: a few kernels of the wasm backend beside the JavaScript
// allocations and copies they make, to tell where a gap between the two comes from.

/** @param p peft-ts's exports; @returns milliseconds per call, by operation */
export function probeOperations(p) {
  p.setBackend("wasm");
  const out = {};
  const time = (name, reps, f) => {
    f();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    out[name] = (performance.now() - t0) / reps;
  };
  const a = p.randn([1024, 1024], { seed: 1 });
  const b = p.randn([1024, 1024], { seed: 2 });
  time("add, 1M float32", 50, () => a.add(b));
  time("exp, 1M float32", 50, () => a.exp());
  const x = p.randn([1024, 576], { seed: 3 });
  const w = p.randn([1536, 576], { seed: 4 });
  time("matmul 1024x576 by 576x1536", 10, () => x.matmul(w.transpose(0, 1)));
  // The same product on the calling thread alone: a gap here is the kernel's, a gap only
  // in the two-thread figure is the threads' (scheduling, waking, sharing two cores).
  p.registerBackend("wasm-1-thread", () => p.createWasmBackend({ threads: 1 }));
  p.setBackend("wasm-1-thread");
  time("matmul 1024x576 by 576x1536, 1 thread", 5, () => x.matmul(w.transpose(0, 1)));
  p.setBackend("wasm");
  const f = new Float32Array(1 << 20).fill(1.5);
  const kept = new Float32Array(1 << 20);
  time("new Float32Array(1M), filled", 200, () => new Float32Array(1 << 20).fill(1));
  time("an existing Float32Array(1M), filled", 200, () => kept.fill(2));
  time("Float32Array(1M).slice()", 200, () => f.slice());
  return out;
}
