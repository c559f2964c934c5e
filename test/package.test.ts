import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

// `npm test` builds first; these check the published shape of the package, not the sources.
describe("the built package", () => {
  beforeAll(() => {
    if (!existsSync(`${root}/dist/index.js`))
      throw new Error("dist/ is missing: run `npm run build` first");
  });

  it('is importable as "peft-ts" with its ops, creation functions and errors', () => {
    const script = `
      import * as p from "peft-ts";
      const names = ["Tensor", "matmul", "add", "softmax", "randn", "noGrad", "autocast", "DTypeError", "ShapeError"];
      const missing = names.filter((n) => !(n in p));
      const a = p.randn([2, 3], { seed: 1 });
      const y = a.matmul(p.Tensor.from(new Float32Array(6).fill(1), [3, 2]));
      console.log(JSON.stringify({ missing, shape: y.shape }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual({ missing: [], shape: [2, 2] });
  });

  it("has a peft command that reports the backend", () => {
    const out = execFileSync(process.execPath, [`${root}/dist/cli/main.js`, "info"], {
      encoding: "utf8",
    });
    expect(out).toMatch(/^peft-ts \d+\.\d+\.\d+\nbackend: (native|wasm|reference)/);
    expect(out).toMatch(/\nthreads: \d+ of \d+ cores\n/);
    expect(out).toMatch(
      /\ncpu features: (unknown|AVX2 (yes|no), AVX-512 (yes|no), AVX512-BF16 (yes|no))/,
    );
  });

  it("runs the peft command with the node options its first line names", () => {
    const main = `${root}/dist/cli/main.js`;
    const [interpreter, ...flags] = readFileSync(main, "utf8").split("\n")[0].slice(2).split(" ");
    expect(interpreter).toBe("/usr/bin/env");
    expect(flags).toEqual(["-S", "node", "--no-concurrent-marking"]);
    // node refuses an option it does not know (exit 9), so this proves the flag is valid.
    const out = execFileSync(process.execPath, [...flags.slice(2), main, "info"], {
      encoding: "utf8",
    });
    expect(out).toMatch(/^peft-ts \d+\.\d+\.\d+\n/);
  });

  it("rejects an unknown command with the list of commands", () => {
    let status = 0;
    let stderr = "";
    try {
      execFileSync(process.execPath, [`${root}/dist/cli/main.js`, "frobnicate"], {
        encoding: "utf8",
        stdio: "pipe",
      });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: string }).stderr);
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(
      /unknown command "frobnicate"; expected one of: demo, train, generate, merge, inspect, info, help/,
    );
  });
});
