import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { nativeBackend } from "./index.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));

// Node unloads an addon when the last worker thread that loaded it exits. The OpenMP
// threads that worker started live on in libgomp, which the addon pulled in, so unloading
// it left them running unmapped code: the process died of a segfault when a worker that
// had used the native backend ended and no other thread held the addon. The addon is
// linked not to be unloaded (binding.gyp: -z nodelete).
describe.runIf(nativeBackend !== null)("the native backend in worker threads", () => {
  it("lets workers that ran parallel kernels exit, one after another, without killing the process", () => {
    if (!existsSync(`${root}dist/index.js`))
      throw new Error("dist/ is missing: run `npm run build` first");
    // The main thread never loads the package, so each worker's exit is the addon's last.
    const script = `
      import { Worker } from "node:worker_threads";
      const body = \`
        import { parentPort } from "node:worker_threads";
        const p = await import(${JSON.stringify(pathToFileURL(`${root}dist/index.js`).href)});
        p.setBackend("native");
        const a = p.randn([384, 384], { seed: 3 });
        const sum = p.silu(a.matmul(a)).toFlatNumbers().reduce((s, v) => s + v, 0);
        parentPort.postMessage({ backend: p.getBackend().name, sum });
      \`;
      const url = new URL("data:text/javascript," + encodeURIComponent(body));
      const results = [];
      for (let i = 0; i < 4; i++) {
        const w = new Worker(url);
        w.on("message", (m) => results.push(m));
        await new Promise((done, failed) => { w.on("exit", done); w.on("error", failed); });
      }
      console.log(JSON.stringify(results));
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
      // Two OpenMP threads even on a one-core machine, spinning while idle: the bug needed
      // a pool thread still inside libgomp's code when the addon went, which otherwise
      // only happens when a worker exits within a few milliseconds of its last kernel.
      env: { ...process.env, OMP_NUM_THREADS: "2", OMP_WAIT_POLICY: "active" },
      timeout: 60_000,
    });
    expect({ signal: run.signal, status: run.status, stderr: run.stderr }).toEqual({
      signal: null,
      status: 0,
      stderr: "",
    });
    const results = JSON.parse(run.stdout) as { backend: string; sum: number }[];
    expect(results).toHaveLength(4);
    for (const r of results) expect(r).toEqual({ backend: "native", sum: results[0]!.sum });
    expect(Number.isFinite(results[0]!.sum)).toBe(true);
  });
});
