import { BackendError } from "../../errors.js";
import type * as Node from "./threads.js";
import { WORKER_LOOP } from "./worker-loop.js";

export type { GemmWorker, WorkerSetup } from "./threads.js";

interface BrowserGlobals {
  crossOriginIsolated?: boolean;
  WorkerGlobalScope?: unknown;
  navigator?: { hardwareConcurrency?: number };
}

/**
 * Threads a wasm matmul uses in a browser: min(2, the cores) inside a worker of a
 * cross-origin isolated page, where memory can be shared and the calling thread may wait
 * for the others; one thread elsewhere (a page's main thread must never block).
 */
export const threadCount: typeof Node.threadCount = () => {
  const g = globalThis as BrowserGlobals;
  if (g.crossOriginIsolated !== true || g.WorkerGlobalScope === undefined) return 1;
  return Math.max(1, Math.min(2, g.navigator?.hardwareConcurrency ?? 1));
};

const SOURCE = `onmessage = (event) => (${WORKER_LOOP})(event.data);`;

interface BrowserWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: "error", listener: (e: { message?: string }) => void): void;
}

export const spawnWorkers: typeof Node.spawnWorkers = (setups) => {
  const g = globalThis as {
    Worker?: new (url: string) => BrowserWorker;
    Blob?: new (parts: string[], options: { type: string }) => object;
    URL: { createObjectURL(blob: object): string };
  };
  if (g.Worker === undefined || g.Blob === undefined)
    throw new BackendError("wasm backend: this browser context cannot start workers");
  const url = g.URL.createObjectURL(new g.Blob([SOURCE], { type: "text/javascript" }));
  return setups.map((setup) => {
    const worker = new g.Worker!(url);
    worker.addEventListener("error", (e) => {
      console.warn(
        `wasm backend: a matmul worker stopped (${e.message ?? "error"}); products continue on the remaining threads`,
      );
    });
    worker.postMessage(setup);
    return worker;
  });
};
