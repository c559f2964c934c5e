import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, runCli } from "../../test/helpers/cli.js";
import { buildDemoModel, writeDemoData } from "./demo/build.js";

// These run the built command (`npm test` builds first), as a user would.
const cli = CLI;
const tmp = () => mkdtempSync(join(tmpdir(), "peft-cli-"));
const work = tmp();
const model = buildDemoModel(join(work, "model"));
const data = writeDemoData(join(work, "train.jsonl"));

const run = runCli;

function losses(out: string): Map<number, number> {
  const byStep = new Map<number, number>();
  for (const line of readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n")) {
    const m = JSON.parse(line);
    if (m.loss !== undefined) byStep.set(m.step, m.loss); // a resumed run overwrites the steps it redoes
  }
  return byStep;
}

describe("the peft command", () => {
  beforeAll(() => {
    if (!existsSync(cli)) throw new Error("dist/ is missing: run `npm run build` first");
  });

  const trainArgs = (out: string) => [
    "train",
    "--model",
    model,
    "--data",
    data,
    "--out",
    out,
    "--max-steps",
    "60",
    "--batch-size",
    "4",
    "--lr",
    "5e-3",
    "--log-every",
    "1",
    "--save-every",
    "5",
    "--quiet",
  ];

  it("resumes after SIGKILL to exactly the uninterrupted run's losses", async () => {
    const whole = tmp();
    expect(run(trainArgs(whole)).status).toBe(0);
    const expected = losses(whole);
    expect(expected.size).toBe(60);

    const out = tmp();
    const child = spawn(process.execPath, [cli, ...trainArgs(out)], { stdio: "ignore" });
    const killedAt = await new Promise<number>((resolve) => {
      const timer = setInterval(() => {
        if (existsSync(join(out, "checkpoint-10"))) {
          child.kill("SIGKILL");
          clearInterval(timer);
          resolve(Date.now());
        }
      }, 5);
      child.on("exit", () => clearInterval(timer));
    });
    await new Promise((r) => child.on("exit", r));
    expect(killedAt).toBeGreaterThan(0);
    expect(child.signalCode).toBe("SIGKILL");
    expect(existsSync(join(out, "checkpoint-60"))).toBe(false); // it really stopped mid-run
    const resumed = run([...trainArgs(out), "--resume"]);
    expect(resumed.status).toBe(0);
    const got = losses(out);
    for (const [step, loss] of expected) expect(got.get(step), `step ${step}`).toBe(loss);
    expect(
      readFileSync(join(out, "adapter_model.safetensors")).equals(
        readFileSync(join(whole, "adapter_model.safetensors")),
      ),
    ).toBe(true);
  }, 120_000);

  it("generates with an adapter, merges it, and inspects both", () => {
    const out = tmp();
    expect(
      run(["train", "--model", model, "--data", data, "--out", out, "--max-steps", "3", "--quiet"])
        .status,
    ).toBe(0);
    const gen = run([
      "generate",
      "--model",
      model,
      "--adapter",
      out,
      "--prompt",
      "Q: opposite of hot?\\nA:",
      "--max-new-tokens",
      "4",
    ]);
    expect(gen.status).toBe(0);
    expect(gen.stdout.length).toBeGreaterThan(0);
    const merged = tmp();
    expect(run(["merge", "--model", model, "--adapter", out, "--out", merged]).status).toBe(0);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"])
      expect(existsSync(join(merged, f))).toBe(true);
    // The merged model generates what base + adapter generates.
    const plain = run([
      "generate",
      "--model",
      merged,
      "--prompt",
      "Q: opposite of hot?\\nA:",
      "--max-new-tokens",
      "4",
    ]);
    expect(plain.stdout).toBe(gen.stdout);
    const info = run(["inspect", out]);
    expect(info.stdout).toMatch(/adapter .*: LORA, r 8, alpha 16/);
    expect(info.stdout).toMatch(
      /targets: down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj|targets: all-linear/,
    );
    expect(run(["inspect", model]).stdout).toMatch(/LlamaForCausalLM .*\n.*hidden_size 64/);
  });

  it("inspects a decoder's family switches, and says why a config cannot load", () => {
    const gemma2 = fileURLToPath(
      new URL("../../test/fixtures/models/tiny-gemma2", import.meta.url),
    );
    expect(run(["inspect", gemma2]).stdout).toMatch(
      /decoder: rope default \(theta 10000\), sliding window 8 on layers 0, attention softcap 0.05, final softcap 1, norms x\*\(1\+w\)/,
    );
    const broken = join(work, "broken-rope");
    cpSync(gemma2, broken, { recursive: true });
    const config = JSON.parse(readFileSync(join(broken, "config.json"), "utf8"));
    config.rope_scaling = { rope_type: "magic" };
    writeFileSync(join(broken, "config.json"), JSON.stringify(config));
    expect(run(["inspect", broken]).stdout).toMatch(
      /cannot be loaded: .*rope_scaling type "magic" is not supported/,
    );
  });

  it("inspects each method's adapter with what describes it", () => {
    const fixture = (n: string) =>
      fileURLToPath(new URL(`../../test/fixtures/adapters/${n}`, import.meta.url));
    const adalora = run(["inspect", fixture("llama-adalora-pruned")]).stdout;
    expect(adalora).toMatch(/ADALORA, init_r 6, target_r 4, alpha 12\n/);
    expect(adalora).toMatch(/ranks kept: 16 of 24 \(per module 2 to 6\)/);
    expect(adalora).toMatch(/parameters: 1,712/);
    const prefix = run(["inspect", fixture("llama-prefix-tuning")]).stdout;
    expect(prefix).toMatch(/PREFIX_TUNING, 4 virtual tokens\n {2}tensors: 1, parameters: 512/);
    expect(run(["inspect", fixture("llama-ia3")]).stdout).toMatch(/IA3\n {2}targets: /);
  });

  it("gives errors a user can act on", () => {
    expect(
      run(["train", "--model", model, "--data", join(work, "missing.jsonl"), "--out", tmp()])
        .stderr,
    ).toMatch(/missing\.jsonl: dataset file not found/);
    const bad = join(work, "bad.jsonl");
    writeFileSync(bad, '{"text": "ok"}\n{"text": \n');
    expect(run(["train", "--model", model, "--data", bad, "--out", tmp()]).stderr).toMatch(
      /bad\.jsonl: line 2 is not valid JSON/,
    );
    const empty = tmp();
    writeFileSync(join(empty, "config.json"), readFileSync(join(model, "config.json")));
    writeFileSync(join(empty, "tokenizer.json"), readFileSync(join(model, "tokenizer.json")));
    expect(run(["train", "--model", empty, "--data", data, "--out", tmp()]).stderr).toMatch(
      /no model weights: expected model\.safetensors/,
    );
    const r = run([
      "train",
      "--model",
      model,
      "--data",
      data,
      "--out",
      tmp(),
      "--target-modules",
      "qkv",
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /matched no module of the model\. Its layers are: model\.embed_tokens, model\.layers\.0\.self_attn\.q_proj/,
    );
    expect(
      run(["train", "--model", model, "--data", data, "--out", tmp(), "--rank", "4"]).stderr,
    ).toMatch(/unknown option --rank; options: --model/);
    expect(run(["train", "--data", data]).stderr).toMatch(/--model is required/);
  });

  it("trains QLoRA with --load-in-4bit", () => {
    const out = tmp();
    const r = run([
      "train",
      "--model",
      model,
      "--data",
      data,
      "--out",
      out,
      "--load-in-4bit",
      "--max-steps",
      "2",
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/trainable params: 16,384 \|\| all params: 123,584/);
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(true);
  });

  it("reads its settings from a YAML file", () => {
    const out = tmp();
    const cfg = join(work, "train.yaml");
    writeFileSync(
      cfg,
      `model: ${model}\ndata: ${data}\nout: ${out}\nmax_steps: 2\nr: 4\ntarget-modules: [q_proj, v_proj]\nquiet: true\n`,
    );
    expect(run(["train", "--config", cfg]).status).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")).r).toBe(4);
    rmSync(out, { recursive: true });
  });
});
