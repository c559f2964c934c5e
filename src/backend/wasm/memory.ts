import { BackendError } from "../../errors.js";
import { type WasmMemory, webAssembly } from "./api.js";

export const PAGE_BYTES = 65536;
/** wasm32 addresses 4 GiB. */
export const MAX_PAGES = 65536;
const ALIGN = 64;

/** A shared memory the module imports; it can grow to the wasm32 limit and never moves. */
export function createSharedMemory(initialPages: number): WasmMemory {
  return new webAssembly!.Memory({ initial: initialPages, maximum: MAX_PAGES, shared: true });
}

/**
 * A bump allocator over a WebAssembly memory: blocks are cache-line aligned, the memory
 * grows when a block does not fit, and everything above a mark is released at once
 * (operands live only for one matmul).
 */
export class Arena {
  private top: number;

  constructor(
    private readonly memory: WasmMemory,
    start: number,
  ) {
    this.top = start;
  }

  /** The byte offset of a new block of `bytes` bytes. */
  alloc(bytes: number): number {
    const at = Math.ceil(this.top / ALIGN) * ALIGN;
    this.ensure(at + bytes);
    this.top = at + bytes;
    return at;
  }

  mark(): number {
    return this.top;
  }

  /** Releases every block allocated since `mark`. */
  release(mark: number): void {
    this.top = mark;
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    if (end > MAX_PAGES * PAGE_BYTES) {
      throw new BackendError(
        `wasm backend: a matmul needs ${mib(end)} of WebAssembly memory, more than the 4 GiB a wasm32 memory addresses (split the product or use the native or reference backend)`,
      );
    }
    try {
      this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    } catch (e) {
      throw new BackendError(
        `wasm backend: could not grow WebAssembly memory from ${mib(have)} to ${mib(end)}: ${(e as Error).message}`,
      );
    }
  }
}
