import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import {
  expectFixtureLogits,
  expectSavedLikePeft,
  expectTrainStep,
  inputsOf,
  logitsOf,
  tinyLlama,
} from "../../../../test/helpers/method-fixtures.js";
import { ValueError } from "../../../errors.js";
import { AutoModelForCausalLM } from "../../../models/auto.js";
import { getPeftModel } from "../../peft-model.js";
import { IA3Config } from "./config.js";
import { IA3Layer } from "./layer.js";

describe("IA3 (PEFT 0.13.2's llama-ia3)", () => {
  it("gives PEFT's logits: active, disabled, merged, and unmerged again", () => {
    const p = expectFixtureLogits("llama-ia3");
    const layers = p.adapterLayers();
    expect(layers.every((l) => l instanceof IA3Layer)).toBe(true);
    expect(layers).toHaveLength(6);
  });

  it("saves the keys, shapes and config PEFT saves, and reloads them bit for bit", () => {
    expectSavedLikePeft(expectFixtureLogits("llama-ia3"), "llama-ia3");
  });

  it("reproduces PEFT's training step", () => {
    expectTrainStep("llama-ia3");
  });

  it("starts as the base model (scales of 1) and trains 384 scales", () => {
    const ref = reference("adapter-llama-ia3");
    const inputs = inputsOf(ref);
    const p = getPeftModel(tinyLlama(), {
      peftType: "IA3",
      targetModules: ["k_proj", "v_proj", "down_proj"],
      feedforwardModules: ["down_proj"],
    });
    expect(maxAbsError(logitsOf(p, inputs), reference("tiny-llama").get("logits")!)).toBeLessThan(
      1e-6,
    );
    expect(p.getNbTrainableParameters()[0]).toBe(384);
  });

  it("scales GPT-2's Conv1D outputs and biases when merged", () => {
    const base = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-gpt2"));
    const p = getPeftModel(base, {
      peftType: "IA3",
      targetModules: ["c_attn", "mlp.c_proj"],
      feedforwardModules: ["mlp.c_proj"],
      initIa3Weights: false,
    });
    p.eval();
    const ids = reference("tiny-gpt2").get("input_ids")!;
    const y = logitsOf(p, { inputIds: ids });
    p.mergeAdapter();
    expect(maxAbsError(logitsOf(p, { inputIds: ids }), y)).toBeLessThan(1e-5);
    p.unmergeAdapter();
    expect(maxAbsError(logitsOf(p, { inputIds: ids }), y)).toBeLessThan(1e-5);
  });

  it("refuses feed-forward modules that are not targets, as PEFT does", () => {
    expect(
      () => new IA3Config({ targetModules: ["k_proj"], feedforwardModules: ["down_proj"] }),
    ).toThrow(ValueError);
  });
});
