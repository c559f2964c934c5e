import { afterEach, describe, expect, it, vi } from "vitest";
import { randn } from "../../tensor/creation.js";
import type { Backend } from "../backend.js";

// Workers that never join, as in a browser whose worker made them inside a synchronous loop.
vi.mock("./threads.js", async (original) => ({
  ...(await original<typeof import("./threads.js")>()),
  spawnWorkers: (setups: readonly unknown[]) => setups.map(() => ({ terminate() {} })),
}));

const { createWasmBackend } = await import("./index.js");

describe.runIf(createWasmBackend() !== null)("wasm matmul workers that never start", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("leave every chunk to the caller, and a warning names startBackend once", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const two = createWasmBackend({ threads: 2 })!;
    const a = randn([64, 72], { seed: 1 });
    const b = randn([72, 80], { seed: 2 });
    const product = (on: Backend) =>
      on.matmul(a.data, a.shape, b.data, b.shape, false, false, [], "float32");
    const want = product(createWasmBackend({ threads: 1 })!);
    for (let i = 0; i < 250; i++) {
      const got = product(two);
      if (i === 0)
        expect(Array.from(got as Float32Array)).toEqual(Array.from(want as Float32Array));
    }
    expect(two.threadsJoined()).toBe(1);
    expect(two.workerChunks()).toBe(0);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toMatch(
      /no matmul worker has started.*await startBackend\(\)/,
    );
  });
});
