import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

// `npm test` builds first; these check the published shape of the package, not the sources.
beforeAll(() => {
  if (!existsSync(`${root}/dist/index.js`))
    throw new Error("dist/ is missing: run `npm run build` first");
});

describe("the built package", () => {
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

/** The README's code blocks that import from "peft-ts", with the names they import. */
function readmeBlocks(): { code: string; values: string[]; types: string[] }[] {
  const readme = readFileSync(`${root}/README.md`, "utf8");
  const blocks: { code: string; values: string[]; types: string[] }[] = [];
  for (const [, code] of readme.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const values: string[] = [];
    const types: string[] = [];
    for (const [, list] of code.matchAll(/import\s*\{([^}]*)\}\s*from\s*"peft-ts"/g))
      for (const item of list.split(",").map((n) => n.trim())) {
        if (item.startsWith("type ")) types.push(item.slice(5).trim());
        else if (item !== "") values.push(item);
      }
    if (values.length + types.length > 0) blocks.push({ code, values, types });
  }
  return blocks;
}

describe("the packed tarball", () => {
  let work: string;
  let project: string;
  let pkg: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "peft-pack-"));
    const [{ filename }] = JSON.parse(
      execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
        cwd: root,
        encoding: "utf8",
      }),
    ) as { filename: string }[];
    project = join(work, "project");
    pkg = join(project, "node_modules", "peft-ts");
    mkdirSync(pkg, { recursive: true });
    // npm's layout of an installed tarball; its dependencies are linked from this checkout,
    // as an offline install cannot resolve them (the tests run without a registry).
    execFileSync("tar", ["xzf", join(work, filename), "-C", pkg, "--strip-components=1"]);
    const deps = Object.keys(
      (JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as { dependencies: object })
        .dependencies,
    );
    for (const dep of deps) {
      mkdirSync(dirname(join(project, "node_modules", dep)), { recursive: true });
      symlinkSync(join(root, "node_modules", dep), join(project, "node_modules", dep));
    }
    writeFileSync(join(project, "package.json"), '{ "private": true, "type": "module" }\n');
  }, 60_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("installs into a fresh project, where every README example type-checks and runs", () => {
    const blocks = readmeBlocks();
    const values = [...new Set(blocks.flatMap((b) => b.values))].sort();
    const types = [...new Set(blocks.flatMap((b) => b.types))].sort();
    const documented = [...values, ...types];
    // What the library promises to export: training, data, schedules, optimizers, 4-bit, generation.
    expect(documented).toEqual(
      expect.arrayContaining([
        "Trainer",
        "TrainingArguments",
        "TrainerCallbacks",
        "loadDataset",
        "learningRateAt",
        "SGD",
        "GradScaler",
        "Linear4bit",
        "quantize4bit",
        "dequantize4bit",
        "GenerateOptions",
      ]),
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          outDir: "out",
          types: ["node"],
          typeRoots: [join(root, "node_modules", "@types")],
        },
      }),
    );
    // Every documented name in one file: the types must resolve, the values must exist.
    writeFileSync(
      join(project, "names.ts"),
      [
        `import { ${[...values, ...types.map((t) => `type ${t}`)].join(", ")} } from "peft-ts";`,
        `export type Types = [${types.join(", ")}];`,
        `const values: Record<string, unknown> = { ${values.join(", ")} };`,
        "console.log(JSON.stringify(Object.keys(values).filter((k) => values[k] === undefined)));",
      ].join("\n"),
    );
    blocks.forEach((b, i) => writeFileSync(join(project, `example-${i}.ts`), b.code));
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    try {
      execFileSync(process.execPath, [tsc, "-p", "."], { cwd: project, encoding: "utf8" });
    } catch (e) {
      throw new Error(`tsc failed:\n${(e as { stdout: string }).stdout}`);
    }
    const bin = join(pkg, "dist", "cli", "main.js");
    // The tarball carries no native build: its package picks its own backend.
    const env = { ...process.env, PEFT_BACKEND: undefined };
    execFileSync(process.execPath, [bin, "demo", "--steps", "1", "--quiet"], {
      cwd: project,
      env,
    });
    const undefinedValues = execFileSync(process.execPath, [join("out", "names.js")], {
      cwd: project,
      encoding: "utf8",
      env,
    });
    expect(JSON.parse(undefinedValues)).toEqual([]);
    // A block that throws fails the test with its stderr (execFileSync throws on exit != 0).
    for (let i = 0; i < blocks.length; i++)
      execFileSync(process.execPath, [join("out", `example-${i}.js`)], {
        cwd: project,
        env,
        stdio: "pipe",
      });
    expect(existsSync(join(project, "my-adapter", "adapter_model.safetensors"))).toBe(true);
    expect(existsSync(join(project, "run", "checkpoint-20", "trainer_state.json"))).toBe(true);
  }, 180_000);

  it("bundles for browsers without a Node built-in, and the bundle trains to the bytes Node saves", async () => {
    const { build } = await import("esbuild");
    writeFileSync(join(project, "web-entry.js"), 'export * from "peft-ts";\n');
    const bundled = await build({
      entryPoints: [join(project, "web-entry.js")],
      absWorkingDir: project,
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    const code = bundled.outputFiles[0]!.text;
    expect(
      code.match(
        /\b(from|import\(|require\()\s*["'](node:)?(fs|path|os|module|crypto|worker_threads)["']/g,
      ),
    ).toBeNull();
    writeFileSync(join(project, "peft.browser.js"), code);
    // Three LoRA steps on a model in memory, on the wasm backend: the bundle (its browser
    // file and thread modules) must train to the same adapter bytes as the package in Node.
    const modelDir = join(root, "test", "fixtures", "models", "tiny-gemma");
    const script = (from: string) => `
      import { readdirSync, readFileSync } from "node:fs";
      const p = await import(${JSON.stringify(from)});
      p.setBackend("wasm");
      p.manualSeed(0);
      const dir = ${JSON.stringify(modelDir)};
      const files = new p.MemoryFiles(readdirSync(dir).map((n) => [n, readFileSync(dir + "/" + n)]));
      const peft = p.getPeftModel(
        p.AutoModelForCausalLM.fromPretrained(files),
        new p.LoraConfig({ r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj"] }),
      );
      const ids = p.Tensor.from([p.Tokenizer.fromPretrained(files).encode("the quick brown fox jumps")]);
      const opt = new p.AdamW(peft.model.parameters().filter((t) => t.requiresGrad), { lr: 1e-2 });
      const losses = [];
      for (let i = 0; i < 3; i++) {
        const { loss } = peft.forward({ inputIds: ids, labels: ids });
        loss.backward();
        opt.step();
        opt.zeroGrad();
        losses.push(loss.item());
      }
      const saved = Object.entries(peft.adapterFiles()).map(([k, v]) => [k, Buffer.from(v).toString("base64")]);
      // A Trainer without a file system: the checkpoint at step 2 stays in memory, and a
      // run resumed from it ends with the adapter of the run that went on.
      const example = { inputIds: ids.toArray()[0], labels: ids.toArray()[0] };
      const trainer = () => new p.Trainer(peft, { maxSteps: 4, batchSize: 1, saveEvery: 2, progress: false },
        { train: [example, example] }, 0, { onCheckpoint: (f, t) => { if (t.step === 2) kept = f; } });
      let kept = null;
      trainer().train();
      const straight = peft.adapterFiles();
      const resumed = trainer();
      resumed.resumeFrom(kept);
      resumed.train();
      const same = Object.entries(resumed.peft.adapterFiles()).every(([k, v]) => Buffer.from(v).equals(straight[k]));
      console.log(JSON.stringify({ backend: p.getBackend().name, losses, saved, checkpoint: Object.keys(kept).sort(), same }));
    `;
    const run = (from: string) =>
      JSON.parse(
        execFileSync(process.execPath, ["--input-type=module", "-e", script(from)], {
          cwd: project,
          encoding: "utf8",
          env: { ...process.env, PEFT_BACKEND: undefined },
        }),
      ) as {
        backend: string;
        losses: number[];
        saved: [string, string][];
        checkpoint: string[];
        same: boolean;
      };
    const inBundle = run("./peft.browser.js");
    const inNode = run("peft-ts");
    expect(inBundle.backend).toBe("wasm");
    expect(inBundle.losses[2]).toBeLessThan(inBundle.losses[0]!);
    expect(inBundle.checkpoint).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
      "optimizer.safetensors",
      "trainer_state.json",
    ]);
    expect(inBundle.same).toBe(true);
    expect(inBundle).toEqual(inNode);
  }, 120_000);
});
