import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import {
  adapterDir,
  expectFixtureLogits,
  expectSavedLikePeft,
  expectTrainStep,
  inputsOf,
  logitsOf,
  referenceExamples,
  tinyLlama,
} from "../../../../test/helpers/method-fixtures.js";
import { slice } from "../../../tensor/ops/layout.js";
import { manualSeed } from "../../../tensor/random.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdamW } from "../../../train/optim/adamw.js";
import { Trainer } from "../../../train/trainer.js";
import { getPeftModel, PeftModel } from "../../peft-model.js";

const FIXTURES = [
  ["llama-prompt-tuning", "PROMPT_TUNING", 20],
  ["llama-p-tuning", "P_TUNING", 20],
  ["llama-prefix-tuning", "PREFIX_TUNING", 16],
  ["llama-prefix-tuning-proj", "PREFIX_TUNING", 16],
] as const;

const ids = (t: Tensor) => Array.from(t.toFlatNumbers());

describe.each(FIXTURES)("%s (PEFT 0.13.2)", (name, type, positions) => {
  it("gives PEFT's logits, the virtual positions' too where PEFT returns them", () => {
    const p = expectFixtureLogits(name);
    expect(p.peftConfig.get("default")!.peftType).toBe(type);
    const ref = reference(`adapter-${name}`);
    const inputs = inputsOf(ref);
    expect(logitsOf(p, inputs).shape).toEqual([2, positions, 256]);
    // Disabled: the base model's logits.
    const base = reference("tiny-llama").get("logits")!;
    expect(
      maxAbsError(
        p.disableAdapter(() => logitsOf(p, inputs)),
        base,
      ),
    ).toBeLessThan(1e-5);
  });

  it("generates PEFT's greedy ids (virtual tokens at the first step, then the cache)", () => {
    const ref = reference(`adapter-${name}`);
    const p = PeftModel.fromPretrained(tinyLlama(), adapterDir(name));
    const prompt = slice(ref.get("input_ids")!, 0, 0, 1);
    const out = p.generate(prompt, { maxNewTokens: 8, doSample: false });
    expect(ids(out)).toEqual(ids(ref.get("generated_ids")!));
  });

  it("saves the keys, shapes and config PEFT saves, and reloads them bit for bit", () => {
    expectSavedLikePeft(expectFixtureLogits(name), name);
  });
});

describe("prompt learning", () => {
  it("reproduces PEFT's prompt-tuning training step (the loss counts the virtual position)", () => {
    expectTrainStep("llama-prompt-tuning");
  });

  it.each([
    [
      "P_TUNING",
      { encoderHiddenSize: 16 },
      4 * 64 + (64 * 16 + 16) + (16 * 16 + 16) + (16 * 64 + 64),
    ],
    [
      "PREFIX_TUNING",
      { prefixProjection: true, encoderHiddenSize: 16 },
      4 * 32 + (32 * 16 + 16) + (16 * 128 + 128),
    ],
    ["PREFIX_TUNING", {}, 4 * 128],
    ["PROMPT_TUNING", {}, 4 * 64],
  ] as const)(
    "%s %j trains its encoder, saves its output, and reloads to the same logits",
    (type, more, count) => {
      manualSeed(4);
      const p = getPeftModel(tinyLlama(), {
        peftType: type,
        numVirtualTokens: 4,
        taskType: "CAUSAL_LM",
        ...more,
      } as never);
      expect(p.getNbTrainableParameters()[0]).toBe(count);
      const ref = reference("tiny-llama");
      const x = slice(ref.get("input_ids")!, 0, 0, 1);
      const params = p.model.parameters().filter((t) => t.requiresGrad);
      const opt = new AdamW(params, { lr: 1e-2 });
      const lossOf = () =>
        (p.forward({ inputIds: x, labels: x } as never) as { loss: Tensor }).loss;
      p.train();
      const first = lossOf();
      first.backward();
      opt.step();
      opt.zeroGrad();
      expect(lossOf().item() as number).toBeLessThan(first.item() as number);
      p.eval();
      const inputs = inputsOf(ref);
      const dir = mkdtempSync(join(tmpdir(), "peft-prompt-"));
      p.savePretrained(dir);
      const back = PeftModel.fromPretrained(tinyLlama(), dir);
      expect(maxAbsError(logitsOf(back, inputs), logitsOf(p, inputs))).toBeLessThan(1e-6);
      const cfg = back.peftConfig.get("default")!.toJson();
      expect(cfg.num_layers).toBe(2);
      expect(cfg.token_dim).toBe(type === "PREFIX_TUNING" ? 32 : 64);
      expect(cfg.num_attention_heads).toBe(type === "PREFIX_TUNING" ? 2 : 4);
    },
  );

  it.each([
    ["P_TUNING", { encoderHiddenSize: 16 }],
    ["PREFIX_TUNING", { prefixProjection: true, encoderHiddenSize: 16 }],
    ["PROMPT_TUNING", {}],
  ] as const)("%s %j resumes from a checkpoint to the uninterrupted run's losses", (type, more) => {
    const fresh = () => {
      manualSeed(6);
      return getPeftModel(tinyLlama(), {
        peftType: type,
        numVirtualTokens: 3,
        taskType: "CAUSAL_LM",
        ...more,
      } as never);
    };
    const train = referenceExamples(1);
    const dir = mkdtempSync(join(tmpdir(), "peft-prompt-resume-"));
    const args = { maxSteps: 4, batchSize: 1, lr: 1e-2 };
    const whole = new Trainer(
      fresh(),
      { ...args, outputDir: join(dir, "a") },
      { train },
      0,
    ).train();
    const stop = {
      onSave() {
        throw new Error("stopped");
      },
    };
    const b = join(dir, "b");
    const stopped = new Trainer(
      fresh(),
      { ...args, outputDir: b, saveEvery: 2 },
      { train },
      0,
      stop,
    );
    expect(() => stopped.train()).toThrow("stopped");
    const resumed = new Trainer(fresh(), { ...args, outputDir: b }, { train }, 0);
    resumed.resumeFrom(join(b, "checkpoint-2"));
    expect(resumed.train().losses).toEqual(whole.losses);
  });

  it("refuses what it cannot do, with a typed error", () => {
    const p = PeftModel.fromPretrained(tinyLlama(), adapterDir("llama-prompt-tuning"));
    expect(() => p.mergeAdapter()).toThrow(/cannot be merged/);
    const ref = reference("tiny-llama");
    expect(() =>
      p.forward({ inputIds: ref.get("input_ids")!, adapterNames: ["default", "default"] } as never),
    ).toThrow(/per-row adapters do not work with prompt learning/);
    expect(() =>
      getPeftModel(tinyLlama(), { peftType: "PROMPT_TUNING", taskType: "CAUSAL_LM" } as never),
    ).toThrow(/numVirtualTokens is required/);
    expect(() =>
      getPeftModel(tinyLlama(), {
        peftType: "P_TUNING",
        numVirtualTokens: 2,
        encoderReparameterizationType: "LSTM",
      } as never),
    ).toThrow(/encoderReparameterizationType must be one of "MLP"/);
    expect(() =>
      getPeftModel(tinyLlama(), {
        peftType: "PROMPT_TUNING",
        numVirtualTokens: 2,
        promptTuningInit: "TEXT",
      } as never),
    ).toThrow(/promptTuningInit must be one of "RANDOM"/);
    // unload gives the base model back, without the prompt encoder.
    const base = p.unload();
    expect(base.namedChildren().map(([n]) => n)).not.toContain("prompt_encoder");
  });
});
