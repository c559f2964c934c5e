import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { getBackend } from "../backend/registry.js";
import { buildDemoModel, DEMO_PAIRS, demoPrompt, writeDemoData } from "../cli/demo/build.js";
import { FileFormatError, ValueError } from "../errors.js";
import { Tokenizer } from "../io/tokenizer.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { getPeftModel } from "../peft/peft-model.js";
import { manualSeed } from "../tensor/random.js";
import { overwrite } from "../tensor/storage-version.js";
import { Tensor } from "../tensor/tensor.js";
import { clipGradNorm } from "./clip.js";
import { collate, epochOrder, loadDataset, pack, tokenizeRecord } from "./data.js";
import { GradScaler } from "./grad-scaler.js";
import { SGD } from "./optim/sgd.js";
import { learningRateAt } from "./schedule.js";
import { Trainer, TrainingError } from "./trainer.js";

const tmp = () => mkdtempSync(join(tmpdir(), "peft-train-"));
const demoDir = buildDemoModel(join(tmp(), "base"));
const tokenizer = Tokenizer.fromPretrained(demoDir);
const dataPath = writeDemoData(join(tmp(), "train.jsonl"));

describe("learning-rate schedules (transformers' formulas)", () => {
  const o = { lr: 1, warmupSteps: 10, totalSteps: 110 };
  it("warm up linearly, then hold, decay linearly or follow a half cosine", () => {
    expect(learningRateAt(0, { ...o, name: "linear" })).toBe(0);
    expect(learningRateAt(5, { ...o, name: "cosine" })).toBe(0.5);
    expect(learningRateAt(60, { ...o, name: "constant" })).toBe(1);
    expect(learningRateAt(60, { ...o, name: "linear" })).toBeCloseTo(0.5, 12);
    expect(learningRateAt(60, { ...o, name: "cosine" })).toBeCloseTo(0.5, 12);
    expect(learningRateAt(35, { ...o, name: "cosine" })).toBeCloseTo(
      0.5 * (1 + Math.cos(Math.PI * 0.25)),
      12,
    );
    expect(learningRateAt(110, { ...o, name: "linear" })).toBe(0);
    expect(() => learningRateAt(1, { ...o, name: "step" as "linear" })).toThrow(
      /unknown learning-rate schedule "step"/,
    );
  });
});

describe("optimizer helpers", () => {
  it("clipGradNorm scales to the maximum norm like torch.nn.utils.clip_grad_norm_", () => {
    const a = Tensor.from([3, 0], [2], "float32").requiresGrad_();
    const b = Tensor.from([4], [1], "float32").requiresGrad_();
    a.grad = Tensor.from([3, 0], [2], "float32");
    b.grad = Tensor.from([4], [1], "float32");
    expect(clipGradNorm([a, b], 1)).toBe(5);
    const g = [...a.grad.toFloat32Array(), ...b.grad.toFloat32Array()];
    expect(Math.hypot(...g)).toBeCloseTo(1, 5);
  });

  it("SGD with momentum follows PyTorch's update rule", () => {
    const p = Tensor.from([1, -2], [2], "float32").requiresGrad_();
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const grads = [
      [0.5, 1],
      [0.25, -1],
    ];
    // Independent float64 computation of the same rule.
    let w = [1, -2];
    let buf: number[] | null = null;
    for (const g of grads) {
      p.grad = Tensor.from(g, [2], "float32");
      opt.step();
      const d: number[] = g.map((x, i) => x + 0.01 * w[i]);
      const nextBuf: number[] = buf === null ? d : buf.map((b, i) => 0.9 * b + d[i]);
      buf = nextBuf;
      w = w.map((x, i) => x - 0.1 * nextBuf[i]);
    }
    const got = p.toFloat32Array();
    w.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 6));
  });

  it("GradScaler skips overflowing steps, backs off and grows", () => {
    const s = new GradScaler(1024, 2, 0.5, 2);
    const p = Tensor.from([1], [1], "float32").requiresGrad_();
    p.grad = Tensor.from([Number.POSITIVE_INFINITY], [1], "float32");
    expect(s.unscale([p])).toBe(false);
    expect(s.scale).toBe(512);
    p.grad = Tensor.from([512], [1], "float32");
    expect(s.unscale([p])).toBe(true);
    expect(p.grad.item()).toBe(1);
    s.update();
    s.update();
    expect(s.scale).toBe(1024);
  });
});

describe("datasets", () => {
  it("tokenises text, prompt/completion and chat records, masking prompts with -100", () => {
    const text = tokenizeRecord({ text: "hi" }, tokenizer, "x");
    expect(text.labels).toEqual(text.inputIds);
    expect(text.inputIds[text.inputIds.length - 1]).toBe(tokenizer.eosTokenId);
    const pc = tokenizeRecord({ prompt: "Q:", completion: " A" }, tokenizer, "x");
    expect(pc.labels.slice(0, 2)).toEqual([-100, -100]);
    expect(pc.labels.slice(2)).toEqual([...tokenizer.encode(" A"), tokenizer.eosTokenId]);
    expect(() =>
      tokenizeRecord(
        { messages: [{ role: "user", content: "hi" }] },
        tokenizer,
        "data.jsonl: line 3",
      ),
    ).toThrow(/no chat_template|must end with an assistant message/);
    expect(() => tokenizeRecord({ question: "?" }, tokenizer, "data.jsonl: line 4")).toThrow(
      /data\.jsonl: line 4: expected \{"text"/,
    );
  });

  it("read from bytes as from the file, naming the source in messages", () => {
    const bytes = new Uint8Array(readFileSync(dataPath));
    expect(loadDataset({ name: "picked.jsonl", bytes }, tokenizer)).toEqual(
      loadDataset(dataPath, tokenizer),
    );
    const bad = new TextEncoder().encode('{"text": "a"}\n{oops\n');
    expect(() => loadDataset({ name: "picked.jsonl", bytes: bad }, tokenizer)).toThrow(
      /picked\.jsonl: line 2 is not valid JSON/,
    );
  });

  it("names the line of invalid JSON", () => {
    const p = join(tmp(), "bad.jsonl");
    writeFileSync(p, '{"text": "a"}\n\n{"text": oops}\n');
    expect(() => loadDataset(p, tokenizer)).toThrow(FileFormatError);
    expect(() => loadDataset(p, tokenizer)).toThrow(/line 3 is not valid JSON/);
  });

  it("pads, packs and shuffles reproducibly", () => {
    const data = loadDataset(dataPath, tokenizer);
    const b = collate(data.slice(0, 3), 0);
    expect(b.inputIds.shape[0]).toBe(3);
    expect(b.tokens).toBe(
      data.slice(0, 3).reduce((n, e) => n + e.labels.filter((l) => l !== -100).length, 0),
    );
    expect(pack(data, 16).every((e) => e.inputIds.length === 16)).toBe(true);
    expect(epochOrder(12, 1, 0)).toEqual(epochOrder(12, 1, 0));
    expect(epochOrder(12, 1, 0)).not.toEqual(epochOrder(12, 1, 1));
    expect([...epochOrder(12, 1, 0)].sort((x, y) => x - y)).toEqual([...Array(12).keys()]);
  });
});

describe("Trainer", () => {
  const data = loadDataset(dataPath, tokenizer);
  // LoRA's initialisation draws from the default generator: seed it so runs can be compared.
  const fresh = (dtype: "float32" | "bfloat16" | "float16" = "float32") => {
    manualSeed(0);
    return getPeftModel(AutoModelForCausalLM.fromPretrained(demoDir, { dtype }), {
      peftType: "LORA",
      r: 8,
      loraAlpha: 16,
      targetModules: "all-linear",
    });
  };

  it("lowers the loss and writes a metrics log", () => {
    const out = tmp();
    const t = new Trainer(
      fresh(),
      { outputDir: out, maxSteps: 30, batchSize: 12, lr: 1e-2, logEvery: 10, progress: false },
      { train: data, eval: data },
      0,
    );
    const { losses } = t.train();
    expect(losses).toHaveLength(30);
    expect(losses[29]).toBeLessThan(losses[0] * 0.5);
    expect(t.evaluate()).toBeLessThan(losses[0]);
  });

  it("trains without an output directory (as in browsers) to the losses of a run with one", () => {
    const args = { maxSteps: 6, batchSize: 12, lr: 1e-2, logEvery: 2, progress: false };
    const out = tmp();
    const onDisk = new Trainer(fresh(), { ...args, outputDir: out }, { train: data }, 0).train();
    const logged: number[] = [];
    const inMemory = new Trainer(fresh(), args, { train: data }, 0, {
      onLog: (m) => logged.push(m.step),
    });
    expect(inMemory.train().losses).toEqual(onDisk.losses);
    expect(logged).toEqual([2, 4, 6]);
    expect(readdirSync(out)).toContain("metrics.jsonl");
    expect(() => inMemory.saveCheckpoint()).toThrow(
      "saveCheckpoint: this Trainer has no outputDir",
    );
    expect(() => new Trainer(fresh(), { ...args, saveEvery: 2 }, { train: data }, 0)).toThrow(
      "Trainer: saveEvery needs an outputDir to write checkpoints into, or an onCheckpoint callback",
    );
  });

  it.each(["float32", "bfloat16", "float16", "nf4"] as const)(
    "runs generate() inside a training callback in %s without a dtype error",
    (mode) => {
      const seen: number[][] = [];
      const precision = mode === "nf4" ? "bfloat16" : mode;
      manualSeed(0);
      const base =
        mode === "nf4"
          ? AutoModelForCausalLM.fromPretrained(demoDir, {
              quantization: {
                loadIn4bit: true,
                quantType: "nf4",
                doubleQuant: true,
                computeDtype: "bfloat16",
              },
            })
          : AutoModelForCausalLM.fromPretrained(demoDir, { dtype: precision });
      const p = getPeftModel(base, {
        peftType: "LORA",
        r: 8,
        loraAlpha: 16,
        targetModules: "all-linear",
      });
      const t = new Trainer(
        p,
        {
          outputDir: tmp(),
          maxSteps: 4,
          batchSize: 4,
          gradientAccumulation: 2,
          lr: 1e-3,
          precision,
          progress: false,
        },
        { train: data },
        0,
        {
          onStepEnd: (m, trainer) => {
            const ids = tokenizer.encode(demoPrompt(DEMO_PAIRS[0][0]));
            const out = trainer.peft.generate(Tensor.from([ids], [1, ids.length], "int64"), {
              maxNewTokens: 2,
            });
            seen.push((out.toArray() as number[][])[0]);
            expect(Number.isFinite(m.loss)).toBe(true);
          },
        },
      );
      t.train();
      expect(seen).toHaveLength(4);
      expect(p.model.training).toBe(true);
    },
  );

  it("with a progress bar on the native backend, hints once at node's --no-concurrent-marking", () => {
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      for (let run = 0; run < 2; run++) {
        const args = { outputDir: tmp(), maxSteps: 1, batchSize: 12, progress: true };
        new Trainer(fresh(), args, { train: data }, 0).train();
      }
    } finally {
      process.stderr.write = write;
    }
    const hints = written.filter((w) => w.includes("--no-concurrent-marking"));
    const expected =
      getBackend().name === "native" && !process.execArgv.includes("--no-concurrent-marking");
    expect(hints).toHaveLength(expected ? 1 : 0);
  });

  it("stops with a clear message naming the step when the loss is not finite", () => {
    const t = new Trainer(
      fresh(),
      { outputDir: tmp(), maxSteps: 50, batchSize: 12, lr: 1e6, maxGradNorm: 0, progress: false },
      { train: data },
      0,
    );
    expect(() => t.train()).toThrow(TrainingError);
    expect(
      () => new Trainer(fresh(), { outputDir: tmp(), batchSize: 0 }, { train: data }, 0),
    ).toThrow(ValueError);
  });

  it("stops float16 training whose steps are all skipped, instead of ending with a NaN loss", () => {
    const out = tmp();
    const t = new Trainer(
      fresh("float16"),
      {
        outputDir: out,
        maxSteps: 200,
        batchSize: 12,
        lr: 1e6,
        maxGradNorm: 0,
        precision: "float16",
        progress: false,
      },
      { train: data },
      0,
    );
    expect(() => t.train()).toThrow(
      /25 steps in a row were skipped .* float16 gradients overflowed/,
    );
    expect(t.step).toBeLessThan(200);
  });

  it("never saves an adapter with non-finite values", () => {
    const out = tmp();
    const p = fresh();
    const t = new Trainer(
      p,
      { outputDir: out, maxSteps: 1, batchSize: 12, progress: false },
      { train: data },
      0,
    );
    t.train();
    const [name, w] = [...p.model.namedParameters()].find(([, x]) => x.requiresGrad)!;
    const values = w.toFloat32Array();
    values[3] = Number.NaN;
    overwrite(w.data, Tensor.from(values, [...w.shape], "float32").to(w.dtype).data);
    expect(() => t.saveCheckpoint()).toThrow(
      new RegExp(`${name.replace(/\./g, "\\.")} holds 1 non-finite value`),
    );
    expect(readdirSync(out).filter((n) => n.includes("checkpoint"))).toEqual([]);
  });

  it("resumes from a checkpoint to exactly the losses of an uninterrupted run", () => {
    const args = { maxSteps: 12, batchSize: 5, lr: 5e-3, logEvery: 1, progress: false, seed: 7 };
    const whole = new Trainer(fresh(), { ...args, outputDir: tmp() }, { train: data }, 0).train()
      .losses;
    const out = tmp();
    // The same run, crashing right after its first checkpoint (step 5).
    const crashing = new Trainer(
      fresh(),
      { ...args, outputDir: out, saveEvery: 5 },
      { train: data },
      0,
      {
        onSave: () => {
          throw new Error("crash");
        },
      },
    );
    expect(() => crashing.train()).toThrow("crash");
    const resumed = new Trainer(
      fresh(),
      { ...args, outputDir: out, saveEvery: 5 },
      { train: data },
      0,
    );
    resumed.resumeFrom(join(out, "checkpoint-5"));
    expect(resumed.train().losses).toEqual(whole);
  });

  /** A directory's files by their path inside it. */
  const filesUnder = (dir: string, sub = ""): Record<string, Uint8Array> =>
    Object.fromEntries(
      readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((e) => {
        const path = sub === "" ? e.name : `${sub}/${e.name}`;
        return e.isDirectory()
          ? Object.entries(filesUnder(dir, path))
          : [[path, new Uint8Array(readFileSync(join(dir, path)))]];
      }),
    );

  it.each(["default", "mine"])(
    "resumes from checkpoint files kept in memory (adapter %s) to the losses of an uninterrupted run, and they are the files of the checkpoint directory",
    (adapterName) => {
      const model = () => {
        manualSeed(0);
        return getPeftModel(
          AutoModelForCausalLM.fromPretrained(demoDir),
          { peftType: "LORA", r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj"] },
          { adapterName },
        );
      };
      const args = { maxSteps: 9, batchSize: 5, lr: 5e-3, progress: false, seed: 3, saveEvery: 4 };
      const whole = new Trainer(model(), { ...args, saveEvery: 0 }, { train: data }, 0).train()
        .losses;
      const kept: Record<string, Uint8Array>[] = [];
      const crash = (files: Record<string, Uint8Array>) => {
        kept.push(files);
        throw new Error("crash");
      };
      // No outputDir: the checkpoint at step 4 goes to onCheckpoint only, then the run dies.
      const inMemory = new Trainer(model(), args, { train: data }, 0, { onCheckpoint: crash });
      expect(() => inMemory.train()).toThrow("crash");
      // The same run with an outputDir writes the same files to checkpoint-4.
      const out = tmp();
      const onDisk = new Trainer(model(), { ...args, outputDir: out }, { train: data }, 0, {
        onCheckpoint: crash,
      });
      expect(() => onDisk.train()).toThrow("crash");
      const [memory, disk] = kept;
      const adapterPath = adapterName === "default" ? "" : `${adapterName}/`;
      expect(Object.keys(memory).sort()).toEqual(
        [
          `${adapterPath}adapter_config.json`,
          `${adapterPath}adapter_model.safetensors`,
          "optimizer.safetensors",
          "trainer_state.json",
        ].sort(),
      );
      expect(filesUnder(join(out, "checkpoint-4"))).toEqual(memory);
      expect(disk).toEqual(memory);

      const resumed = new Trainer(model(), args, { train: data }, 0, { onCheckpoint: () => {} });
      resumed.resumeFrom(memory);
      expect(resumed.train().losses).toEqual(whole);
      // Resuming does not touch the kept files: the optimizer updates its own copies.
      expect(disk).toEqual(memory);
      const again = new Trainer(model(), args, { train: data }, 0, { onCheckpoint: () => {} });
      again.resumeFrom(memory);
      expect(again.train().losses).toEqual(whole);
    },
  );

  it("says what is missing when checkpoint files in memory are not a checkpoint", () => {
    const t = new Trainer(fresh(), { maxSteps: 1, progress: false }, { train: data }, 0);
    const { "trainer_state.json": _, ...noState } = t.checkpointFiles();
    expect(() => t.resumeFrom(noState)).toThrow(
      "<checkpoint in memory>/trainer_state.json: trainer_state.json (not a checkpoint without it) not found",
    );
    const { "optimizer.safetensors": __, ...noMoments } = t.checkpointFiles();
    expect(() => t.resumeFrom(noMoments)).toThrow(
      "<checkpoint in memory>/optimizer.safetensors: safetensors file not found",
    );
  });
});
