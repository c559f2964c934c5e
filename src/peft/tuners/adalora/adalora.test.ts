import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import {
  adapterDir,
  expectFixtureLogits,
  expectSavedLikePeft,
  inputsOf,
  logitsOf,
  referenceExamples,
  tinyLlama,
} from "../../../../test/helpers/method-fixtures.js";
import { SafetensorsFile } from "../../../io/safetensors/reader.js";
import { mul } from "../../../tensor/ops/elementwise.js";
import { slice } from "../../../tensor/ops/layout.js";
import { manualSeed } from "../../../tensor/random.js";
import { noGrad } from "../../../tensor/state.js";
import { overwrite } from "../../../tensor/storage-version.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdamW } from "../../../train/optim/adamw.js";
import { Trainer } from "../../../train/trainer.js";
import { getPeftModel, PeftModel } from "../../peft-model.js";
import { RankAllocator } from "./allocator.js";
import { AdaLoraConfig } from "./config.js";
import { AdaLoraLayer } from "./layer.js";

const PRUNED = "llama-adalora-pruned";
const savedConfig = (name: string) =>
  JSON.parse(readFileSync(join(adapterDir(name), "adapter_config.json"), "utf8"));

function ranks(p: PeftModel): Record<string, number> {
  return Object.fromEntries(
    p.adapterLayers().map((l) => [l.path, (l as AdaLoraLayer).settingsOf("default").r]),
  );
}

/**
 * The fixture's run, step by step as PEFT's README describes it: seed 111, random init with
 * A and B scaled by 0.1, four AdamW steps on row 0, update_and_allocate after each step.
 */
function peftRun(): { p: PeftModel; losses: number[] } {
  const model = tinyLlama();
  manualSeed(111);
  const p = getPeftModel(
    model,
    new AdaLoraConfig({
      taskType: "CAUSAL_LM",
      initR: 6,
      targetR: 4,
      loraAlpha: 12,
      targetModules: ["q_proj", "v_proj"],
      totalStep: 4,
      tinit: 0,
      tfinal: 1,
      deltaT: 1,
      initLoraWeights: false,
    }),
  );
  noGrad(() => {
    for (const [name, t] of p.model.namedParameters())
      if (/\.lora_[AB]\./.test(`${name}.`)) overwrite(t.data, mul(t, 0.1).data);
  });
  p.train();
  const x = slice(reference("tiny-llama").get("input_ids")!, 0, 0, 1);
  const params = p.model.parameters().filter((t) => t.requiresGrad);
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
  const hooks = p.trainingHooks()!;
  const losses: number[] = [];
  for (let step = 0; step < 4; step++) {
    const loss = (p.forward({ inputIds: x, labels: x } as never) as { loss: Tensor }).loss;
    losses.push(loss.item() as number);
    loss.backward();
    opt.step();
    hooks.afterStep!(step);
    opt.zeroGrad();
  }
  p.eval();
  return { p, losses };
}

describe("AdaLoRA (PEFT 0.13.2's llama-adalora and llama-adalora-pruned)", () => {
  it("gives PEFT's logits: active, disabled, merged, and unmerged again", () => {
    const p = expectFixtureLogits("llama-adalora");
    expect(p.adapterLayers().every((l) => l instanceof AdaLoraLayer)).toBe(true);
    expect(Object.values(ranks(p))).toEqual([6, 6, 6, 6]);
  });

  it("loads a pruned adapter at the ranks its rank_pattern keeps, still divided by init_r", () => {
    const p = expectFixtureLogits(PRUNED);
    expect(ranks(p)).toEqual({
      "model.layers.0.self_attn.q_proj": 2,
      "model.layers.0.self_attn.v_proj": 5,
      "model.layers.1.self_attn.q_proj": 3,
      "model.layers.1.self_attn.v_proj": 6,
    });
    for (const l of p.adapterLayers())
      expect((l as AdaLoraLayer).settingsOf("default").ranknum).toBe(6);
  });

  it("saves the keys, shapes and config PEFT saves, and reloads them bit for bit", () => {
    expectSavedLikePeft(expectFixtureLogits("llama-adalora"), "llama-adalora");
    expectSavedLikePeft(expectFixtureLogits(PRUNED), PRUNED);
  });

  it("reproduces PEFT's four-step run: losses, the rank allocation and the pruned tensors", () => {
    const { p, losses } = peftRun();
    // The README gives the losses to 4 decimals; they include the orthogonality term.
    [6.1963, 6.0576, 5.9413, 5.8266].forEach((want, i) =>
      expect(Math.abs(losses[i] - want), `step ${i}`).toBeLessThan(6e-5),
    );
    expect(p.peftConfig.get("default")!.toJson().rank_pattern).toEqual(
      savedConfig(PRUNED).rank_pattern,
    );
    const ref = reference(`adapter-${PRUNED}`);
    const inputs = inputsOf(ref);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-5);
    // What savePretrained writes equals PEFT's file: the kept ranks only.
    const dir = mkdtempSync(join(tmpdir(), "peft-adalora-"));
    p.savePretrained(dir);
    const mine = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
    const peft = SafetensorsFile.open(join(adapterDir(PRUNED), "adapter_model.safetensors"));
    try {
      expect(mine.keys().sort()).toEqual(peft.keys().sort());
      for (const k of peft.keys())
        expect(maxAbsError(mine.load(k), peft.load(k)), k).toBeLessThan(1e-5);
    } finally {
      mine.close();
      peft.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("adds PEFT's orthogonality term, 0.5 · mean ‖AAᵀ−I‖_F and ‖BᵀB−I‖_F, to the loss", () => {
    manualSeed(3);
    const p = getPeftModel(tinyLlama(), {
      peftType: "ADALORA",
      initR: 4,
      targetModules: ["q_proj", "down_proj"],
      totalStep: 10,
    });
    const x = slice(reference("tiny-llama").get("input_ids")!, 0, 0, 1);
    const lossOf = (out: unknown) => (out as { loss: Tensor }).loss.item() as number;
    const withTerm = lossOf(p.forward({ inputIds: x, labels: x } as never));
    const plain = lossOf(p.model.forward({ inputIds: x, labels: x } as never));
    // float64 from the tensors' values.
    const distance = (m: Float32Array, rows: number, cols: number, gramOfRows: boolean) => {
      const n = gramOfRows ? rows : cols;
      let s = 0;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let g = 0;
          for (let k = 0; k < (gramOfRows ? cols : rows); k++)
            g += gramOfRows ? m[i * cols + k] * m[j * cols + k] : m[k * cols + i] * m[k * cols + j];
          s += (g - (i === j ? 1 : 0)) ** 2;
        }
      return Math.sqrt(s);
    };
    let total = 0;
    let count = 0;
    for (const l of p.adapterLayers() as AdaLoraLayer[]) {
      const A = l.factor("lora_A", "default");
      const B = l.factor("lora_B", "default");
      total += distance(A.toFloat32Array(), A.shape[0], A.shape[1], true);
      total += distance(B.toFloat32Array(), B.shape[0], B.shape[1], false);
      count += 2;
    }
    expect(count).toBe(8);
    expect(Math.abs(withTerm - plain - (0.5 * total) / count)).toBeLessThan(1e-5);
    // PEFT's default init: E = 0, so the adapter starts as the base model.
    const ref = reference("tiny-llama");
    const inputs = inputsOf(ref);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-6);
  });

  it("follows PEFT's cubic budget schedule, masking every deltaT steps", () => {
    const budgets = (fields: Partial<AdaLoraConfig>, steps: number[]) => {
      const config = new AdaLoraConfig({ initR: 6, targetR: 4, ...(fields as object) });
      const layers = getPeftModel(tinyLlama(), config).adapterLayers() as AdaLoraLayer[];
      const a = new RankAllocator(layers, config, "default");
      return steps.map((s) => a.budgetAt(s));
    };
    const q = { targetModules: ["q_proj", "v_proj"] };
    expect(budgets({ ...q, totalStep: 4, tfinal: 1 }, [0, 1, 2, 3])).toEqual([
      { budget: 24, mask: false },
      { budget: 18, mask: true },
      { budget: 16, mask: true },
      { budget: 16, mask: true },
    ]);
    // left = 1 - (step - tinit) / (total - tfinal - tinit); budget = ⌊8·left³ + 16⌋.
    expect(
      budgets({ ...q, totalStep: 10, tinit: 2, tfinal: 3, deltaT: 2 }, [2, 3, 4, 7, 8]),
    ).toEqual([
      { budget: 24, mask: false },
      { budget: 20, mask: false },
      { budget: 17, mask: true },
      { budget: 16, mask: false },
      { budget: 16, mask: true },
    ]);
  });

  it("trains with the Trainer, which fills in totalStep and allocates ranks after each step", () => {
    manualSeed(5);
    const p = getPeftModel(tinyLlama(), {
      peftType: "ADALORA",
      initR: 4,
      targetR: 2,
      loraAlpha: 8,
      tfinal: 2,
      initLoraWeights: false,
      targetModules: ["q_proj", "v_proj", "down_proj"],
    });
    const examples = referenceExamples(2);
    const dir = mkdtempSync(join(tmpdir(), "peft-adalora-train-"));
    try {
      const t = new Trainer(
        p,
        { outputDir: dir, maxSteps: 6, batchSize: 1, lr: 1e-2 },
        {
          train: examples,
        },
        0,
      );
      const { losses } = t.train();
      expect(losses.at(-1)!).toBeLessThan(losses[0]);
      const config = p.peftConfig.get("default") as AdaLoraConfig;
      expect(config.totalStep).toBe(6);
      const masks = Object.values(config.rankPattern ?? {});
      expect(masks).toHaveLength(6);
      expect(masks.flat().filter(Boolean)).toHaveLength(2 * 6);
      // Dropped ranks have E = 0 in memory; the saved file keeps only the others.
      for (const l of p.adapterLayers() as AdaLoraLayer[]) {
        const E = l.factor("lora_E", "default").toFloat32Array();
        config.rankPattern![`${l.path}.lora_E`].forEach((kept, k) => {
          if (!kept) expect(E[k]).toBe(0);
        });
      }
      p.savePretrained(join(dir, "out"));
      const back = PeftModel.fromPretrained(tinyLlama(), join(dir, "out"));
      const rows = (m: PeftModel) => Object.values(ranks(m)).reduce((a, b) => a + b, 0);
      expect(rows(back)).toBe(12);
      const ref = reference("tiny-llama");
      const inputs = inputsOf(ref);
      p.eval();
      expect(maxAbsError(logitsOf(back, inputs), logitsOf(p, inputs))).toBeLessThan(1e-6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("resumes from a checkpoint to the uninterrupted run's losses, masks and tensors", () => {
    const fresh = () => {
      manualSeed(9);
      return getPeftModel(tinyLlama(), {
        peftType: "ADALORA",
        initR: 4,
        targetR: 2,
        loraAlpha: 8,
        tfinal: 1,
        initLoraWeights: false,
        targetModules: ["q_proj", "v_proj"],
      });
    };
    const train = referenceExamples(2);
    const dir = mkdtempSync(join(tmpdir(), "peft-adalora-resume-"));
    try {
      const args = { maxSteps: 6, batchSize: 1, lr: 1e-2 };
      const whole = fresh();
      const all = new Trainer(whole, { ...args, outputDir: join(dir, "a") }, { train }, 0).train();
      // A run stopped right after its checkpoint at step 3 (the schedule spans all 6 steps).
      const stopped = new Trainer(
        fresh(),
        { ...args, outputDir: join(dir, "b"), saveEvery: 3 },
        { train },
        0,
        {
          onSave() {
            throw new Error("stopped");
          },
        },
      );
      expect(() => stopped.train()).toThrow("stopped");
      const second = fresh();
      const t = new Trainer(second, { ...args, outputDir: join(dir, "b") }, { train }, 0);
      t.resumeFrom(join(dir, "b", "checkpoint-3"));
      expect(t.train().losses).toEqual(all.losses);
      const pattern = (p: PeftModel) => p.peftConfig.get("default")!.toJson().rank_pattern;
      expect(pattern(second)).toEqual(pattern(whole));
      const mine = second.adapterStateDict();
      for (const [k, v] of whole.adapterStateDict())
        expect(maxAbsError(mine.get(k)!, v), k).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses what PEFT refuses, with the field named", () => {
    const t = ["q_proj"];
    expect(() => new AdaLoraConfig({ targetModules: t, useDora: true })).toThrow(
      /AdaLoraConfig.useDora: AdaLoRA does not support DoRA/,
    );
    expect(() => new AdaLoraConfig({ targetModules: t, loftqConfig: { loftq_bits: 4 } })).toThrow(
      /does not support LoftQ/,
    );
    expect(() => new AdaLoraConfig({ beta1: 1 })).toThrow(/beta1 must be a number in \(0, 1\)/);
    expect(() =>
      AdaLoraConfig.fromJson({ ...savedConfig(PRUNED), rank_pattern: { "x.lora_E": [1, 0] } }),
    ).toThrow(/rankPattern\["x.lora_E"\] must be a list of true\/false/);
    const short = { ...savedConfig(PRUNED).rank_pattern };
    short["model.layers.0.self_attn.q_proj.lora_E"] = [true, false];
    expect(() =>
      getPeftModel(
        tinyLlama(),
        AdaLoraConfig.fromJson({ ...savedConfig(PRUNED), rank_pattern: short }),
      ),
    ).toThrow(/has 2 entries; expected initR = 6/);
    const p = getPeftModel(tinyLlama(), { peftType: "ADALORA", targetModules: t });
    expect(() => p.addAdapter("second", new AdaLoraConfig({ targetModules: t }))).toThrow(
      /AdaLoRA trains one adapter at a time/,
    );
    p.addAdapter("frozen", new AdaLoraConfig({ targetModules: t, inferenceMode: true }));
  });

  it("reads deltaT under PEFT's own key, not delta_t", () => {
    const json = new AdaLoraConfig({ deltaT: 3 }).toJson();
    expect(json.deltaT).toBe(3);
    expect("delta_t" in json).toBe(false);
    expect(AdaLoraConfig.fromJson(json).deltaT).toBe(3);
  });
});
