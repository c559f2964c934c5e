import { spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, runCli as run } from "../../test/helpers/cli.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { PeftModel } from "../peft/peft-model.js";
import { PEFT_METHODS } from "../peft/registry.js";
import { randn } from "../tensor/creation.js";
import { concat, slice } from "../tensor/ops/layout.js";
import type { ArgSpec } from "./args.js";
import { kebab } from "./args.js";
import { DEMO_SPEC } from "./commands/demo.js";
import { GENERATE_SPEC } from "./commands/generate.js";
import { MERGE_SPEC } from "./commands/merge.js";
import { TRAIN_SPEC } from "./commands/train.js";
import { buildDemoModel, writeDemoData } from "./demo/build.js";

const FIXTURES = new URL("../../test/fixtures/models/", import.meta.url).pathname;
const tmp = () => mkdtempSync(join(tmpdir(), "peft-cli-opts-"));
const work = tmp();
const model = buildDemoModel(join(work, "model"));
const data = writeDemoData(join(work, "train.jsonl"));
const train = (out: string, ...more: string[]) =>
  run(["train", "--model", model, "--data", data, "--out", out, "--quiet", ...more]);

/**
 * tiny-gpt2 with the demo's byte tokenizer (vocab 259) and a 32-position context: learned
 * positions, so 32 is a hard limit.
 */
function gpt2WithTokenizer(): string {
  const dir = join(work, "gpt2");
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  const config = JSON.parse(readFileSync(join(FIXTURES, "tiny-gpt2/config.json"), "utf8"));
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      ...config,
      vocab_size: 259,
      n_positions: 32,
      bos_token_id: 1,
      eos_token_id: 2,
    }),
  );
  const w = SafetensorsFile.open(join(FIXTURES, "tiny-gpt2/model.safetensors")).loadAll();
  const wte = w.get("transformer.wte.weight")!;
  w.set("transformer.wte.weight", concat([wte, randn([3, 64], { seed: 1 })], 0));
  w.set("transformer.wpe.weight", slice(w.get("transformer.wpe.weight")!, 0, 0, 32));
  w.delete("lm_head.weight");
  saveSafetensors(join(dir, "model.safetensors"), w, { format: "pt" });
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) cpSync(join(model, f), join(dir, f));
  return dir;
}

describe("peft's options", () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error("dist/ is missing: run `npm run build` first");
  });

  it("are all listed by help, from the same table the parser reads", () => {
    const specs: Record<string, ArgSpec> = {
      train: TRAIN_SPEC,
      generate: GENERATE_SPEC,
      merge: MERGE_SPEC,
      demo: DEMO_SPEC,
    };
    const overview = run(["help"]).stdout;
    for (const [command, spec] of Object.entries(specs)) {
      expect(overview).toContain(`  ${command} `);
      const help = run(["help", command]);
      expect(help.status).toBe(0);
      expect(run([command, "--help"]).stdout).toBe(help.stdout);
      for (const key of Object.keys(spec)) expect(help.stdout).toContain(`--${kebab(key)}`);
      expect(help.stdout).toContain("--config FILE");
    }
    expect(run(["help", "train"]).stdout).toMatch(/--log-every N +log the loss every N steps/);
    expect(run(["help", "train"]).stdout).toMatch(/--quiet +print nothing but errors/);
    expect(run(["help", "trian"]).stderr).toMatch(/unknown command "trian"; expected one of: demo/);
  });

  it("--version prints the package's version", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    for (const flag of ["--version", "-v", "version"])
      expect(run([flag]).stdout).toBe(`${pkg.version}\n`);
  });

  it("numbers are checked against their bounds before anything loads", () => {
    for (const [flag, value, want] of [
      ["--max-length", "0", '--max-length expects an integer >= 1, got "0"'],
      ["--max-length", "-5", '--max-length expects an integer >= 1, got "-5"'],
      ["--max-length", "1.5", '--max-length expects an integer >= 1, got "1.5"'],
      ["--batch-size", "0", "--batch-size expects an integer >= 1"],
      ["--lr", "abc", "--lr expects a number >= 0"],
      ["--method", "ia4", "--method must be one of lora, dora, vera"],
      ["--dtype", "float64", "--dtype must be one of float32, bfloat16, float16, auto"],
    ]) {
      // A model that cannot load: the option is refused first.
      const r = run(["train", "--model", work, "--data", data, "--out", tmp(), flag, value]);
      expect(r.status, `${flag} ${value}`).toBe(1);
      expect(r.stderr).toContain(want);
    }
    expect(
      run(["generate", "--model", model, "--prompt", "x", "--max-new-tokens", "-1"]).stderr,
    ).toMatch(/--max-new-tokens expects an integer >= 0/);
  });

  it("--max-length defaults to the model's context, which learned positions cannot exceed", () => {
    const gpt2 = gpt2WithTokenizer();
    const long = join(work, "long.jsonl");
    writeFileSync(long, `${JSON.stringify({ text: "a long line ".repeat(20) })}\n`);
    // 240 tokens cut to the 32 positions GPT-2 has: it trains (a default of 512 would not).
    const out = tmp();
    const r = run([
      "train",
      "--model",
      gpt2,
      "--data",
      long,
      "--out",
      out,
      "--max-steps",
      "1",
      "--quiet",
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(
      run(["train", "--model", gpt2, "--data", long, "--out", tmp(), "--max-length", "33"]).stderr,
    ).toMatch(/--max-length 33 is longer than the model's context of 32 positions/);
  });

  it("generate stops at --stop strings and at a learned-position model's context, keeping the text", () => {
    const gen = (m: string, ...more: string[]) =>
      run(["generate", "--model", m, "--prompt", "Q: opposite of hot?\\nA:", ...more]);
    const full = gen(model, "--max-new-tokens", "12");
    expect(full.status).toBe(0);
    const text = full.stdout.slice(0, -1);
    // A stop string the model writes after its first character (the random base writes some
    // bytes that are not UTF-8 on their own: those print as U+FFFD and are avoided).
    const at = text.split("").findIndex((c, i) => i > 0 && c !== "\uFFFD");
    expect(at).toBeGreaterThan(0);
    const stop = text[at];
    const stopped = gen(model, "--max-new-tokens", "12", "--stop", `zzz,${stop}`);
    expect(stopped.status).toBe(0);
    const out = stopped.stdout.slice(0, -1);
    expect(out.endsWith(stop)).toBe(true);
    expect(out).toBe(text.slice(0, text.indexOf(stop) + stop.length));
    expect(out.length).toBeLessThan(text.length);

    const gpt2 = gpt2WithTokenizer();
    const long = gen(gpt2, "--max-new-tokens", "100");
    expect(long.status).toBe(0);
    expect(long.stderr).toMatch(
      /^peft generate: stopped at the model's context of 32 tokens, after \d+ of 100 new tokens/,
    );
    expect(long.stdout.length).toBeGreaterThan(1);
  });

  it("--out that is a file, or that overlaps the model, is refused before loading", () => {
    const file = join(work, "a-file");
    writeFileSync(file, "keep me");
    const r = train(file);
    expect(r.stderr).toMatch(/--out .*a-file is a file; expected a directory/);
    expect(readFileSync(file, "utf8")).toBe("keep me");
    const adapter = tmp();
    expect(train(adapter, "--max-steps", "1").status).toBe(0);
    const before = readFileSync(join(model, "model.safetensors"));
    for (const [out, how] of [
      [model, "is the --model directory"],
      [join(model, "merged"), "is inside the --model directory"],
      [work, "contains the --model directory"],
      [adapter, "is the --adapter directory"],
    ]) {
      const m = run(["merge", "--model", model, "--adapter", adapter, "--out", out]);
      expect(m.status, out).toBe(1);
      expect(m.stderr).toContain(how);
    }
    expect(readFileSync(join(model, "model.safetensors")).equals(before)).toBe(true);
    expect(existsSync(join(model, "merged"))).toBe(false);
  });

  it("--dtype auto loads config.json's torch_dtype in every command", () => {
    // The demo model stored in bfloat16, as transformers writes such a directory.
    const bf16 = join(work, "bf16");
    mkdirSync(bf16, { recursive: true });
    for (const f of ["tokenizer.json", "tokenizer_config.json"])
      cpSync(join(model, f), join(bf16, f));
    const config = JSON.parse(readFileSync(join(model, "config.json"), "utf8"));
    writeFileSync(
      join(bf16, "config.json"),
      JSON.stringify({ ...config, torch_dtype: "bfloat16" }),
    );
    const w = SafetensorsFile.open(join(model, "model.safetensors")).loadAll();
    for (const [k, t] of w) w.set(k, t.to("bfloat16"));
    saveSafetensors(join(bf16, "model.safetensors"), w, { format: "pt" });

    const generate = (dtype: string) =>
      run([
        "generate",
        "--model",
        bf16,
        "--prompt",
        "Q: hot?",
        "--max-new-tokens",
        "6",
        "--dtype",
        dtype,
      ]);
    const auto = generate("auto");
    expect(auto.status, auto.stderr).toBe(0);
    expect(auto.stdout).toBe(generate("bfloat16").stdout);
    const adapter = tmp();
    const t = run([
      "train",
      "--model",
      bf16,
      "--data",
      data,
      "--out",
      adapter,
      "--max-steps",
      "1",
      "--dtype",
      "auto",
      "--quiet",
    ]);
    expect(t.status, t.stderr).toBe(0);
    const merged = tmp();
    const m = run([
      "merge",
      "--model",
      bf16,
      "--adapter",
      adapter,
      "--out",
      merged,
      "--dtype",
      "auto",
    ]);
    expect(m.status, m.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(merged, "config.json"), "utf8")).torch_dtype).toBe(
      "bfloat16",
    );
  });

  it("merge --dequantize writes a torch_dtype that matches the tensors it writes", () => {
    const adapter = tmp();
    expect(train(adapter, "--max-steps", "1", "--load-in-4bit").status).toBe(0);
    for (const dtype of ["bfloat16", "float16", "float32"]) {
      const merged = tmp();
      const r = run([
        "merge",
        "--model",
        model,
        "--adapter",
        adapter,
        "--out",
        merged,
        "--dequantize",
        dtype,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const config = JSON.parse(readFileSync(join(merged, "config.json"), "utf8"));
      expect(config.torch_dtype).toBe(dtype);
      expect(config.quantization_config).toBeUndefined();
      const file = SafetensorsFile.open(join(merged, "model.safetensors"));
      const want = { bfloat16: "BF16", float16: "F16", float32: "F32" }[dtype];
      expect(new Set(file.keys().map((k) => file.entry(k).dtype))).toEqual(new Set([want]));
      file.close();
    }
  });

  it("--resume of another adapter's checkpoint says what differs", () => {
    const out = tmp();
    expect(train(out, "--max-steps", "2", "--save-every", "1").status).toBe(0);
    const r = train(out, "--max-steps", "4", "--method", "vera", "--resume");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /checkpoint-2 holds a LORA, r 8 adapter, but this run trains VERA, r 256; they differ in .*peft_type \("LORA" there, "VERA" here\)/,
    );
    expect(train(out, "--max-steps", "4", "--r", "4", "--resume").stderr).toMatch(
      /r \(8 there, 4 here\)/,
    );
    expect(train(out, "--max-steps", "4", "--resume").status).toBe(0);
  });
});

describe("peft train's output directory", () => {
  it("belongs to one run at a time; a dead run's lock is taken over", async () => {
    const out = tmp();
    const first = spawn(
      process.execPath,
      [
        CLI,
        "train",
        "--model",
        model,
        "--data",
        data,
        "--out",
        out,
        "--max-steps",
        "400",
        "--quiet",
      ],
      { stdio: "ignore" },
    );
    const lock = join(out, ".peft-train.lock");
    while (!existsSync(lock)) await new Promise((r) => setTimeout(r, 10));
    const second = train(out, "--max-steps", "1");
    first.kill("SIGKILL");
    await new Promise((r) => first.on("exit", r));
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(`another training run \\(pid ${first.pid}\\) is writing into this directory`),
    );
    // The killed run's lock names a process that no longer exists.
    expect(readFileSync(lock, "utf8").trim()).toBe(String(first.pid));
    writeFileSync(join(out, ".checkpoint-5.999999999.tmp"), "");
    const third = train(out, "--max-steps", "1");
    expect(third.stderr).toBe("");
    expect(third.status).toBe(0);
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(join(out, ".checkpoint-5.999999999.tmp"))).toBe(false);
  }, 60_000);

  it("is never written through a symlink", () => {
    const out = tmp();
    const victim = join(work, "victim.txt");
    writeFileSync(victim, "untouched");
    symlinkSync(victim, join(out, "metrics.jsonl"));
    const r = train(out, "--max-steps", "1", "--log-every", "1");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /metrics\.jsonl: is a symbolic link; peft-ts does not write through links/,
    );
    expect(readFileSync(victim, "utf8")).toBe("untouched");

    const adapter = tmp();
    expect(train(adapter, "--max-steps", "1").status).toBe(0);
    const merged = tmp();
    symlinkSync(victim, join(merged, "tokenizer.json"));
    expect(run(["merge", "--model", model, "--adapter", adapter, "--out", merged]).status).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("untouched");
    expect(() => readlinkSync(join(merged, "tokenizer.json"))).toThrow(); // replaced by a file
    expect(
      readFileSync(join(merged, "tokenizer.json")).equals(
        readFileSync(join(model, "tokenizer.json")),
      ),
    ).toBe(true);
  });
});

describe("peft train --method, for every name the registry gives", () => {
  const names = TRAIN_SPEC.method.choices ?? [];
  const peftTypes = Object.fromEntries(
    Object.entries(PEFT_METHODS).flatMap(([type, m]) =>
      Object.keys(m.command.names).map((name) => [name, type]),
    ),
  );

  it("lists every registered method's names", () => {
    expect([...names].sort()).toEqual(Object.keys(peftTypes).sort());
    expect(new Set(Object.values(peftTypes))).toEqual(new Set(Object.keys(PEFT_METHODS)));
  });

  it.each(names.map((n) => [n]))(
    "%s trains, lowers the loss, and saves an adapter that loads back",
    (name) => {
      const out = tmp();
      // One batch of all twelve examples per step: every loss is of the same data.
      const r = train(
        out,
        ...["--method", name, "--max-steps", "6", "--batch-size", "12"],
        ...["--lr", "1e-2", "--log-every", "1"],
      );
      expect(r.status, r.stderr).toBe(0);
      const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
      expect(config.peft_type).toBe(peftTypes[name]);
      expect(config.use_dora ?? false).toBe(name === "dora");
      const losses = readFileSync(join(out, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).loss as number);
      expect(losses).toHaveLength(6);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[5]).toBeLessThan(losses[0]);
      const back = PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(model), out);
      expect(back.peftConfig.get("default")!.peftType).toBe(peftTypes[name]);
    },
  );
});
