import { describe, expect, it } from "vitest";
import { maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import {
  expectFixtureLogits,
  expectSavedLikePeft,
  expectTrainStep,
  inputsOf,
  logitsOf,
  tinyLlama,
} from "../../../../test/helpers/method-fixtures.js";
import { getPeftModel } from "../../peft-model.js";
import { LoHaLayer } from "./layer.js";

describe("LoHa (PEFT 0.13.2's llama-loha)", () => {
  it("gives PEFT's logits: active, disabled, merged, and unmerged again", () => {
    const p = expectFixtureLogits("llama-loha");
    expect(p.adapterLayers().every((l) => l instanceof LoHaLayer)).toBe(true);
  });

  it("saves the keys, shapes and config PEFT saves, and reloads them bit for bit", () => {
    expectSavedLikePeft(expectFixtureLogits("llama-loha"), "llama-loha");
  });

  it("reproduces PEFT's training step", () => {
    expectTrainStep("llama-loha");
  });

  it("starts as the base model and trains 4·r·(in + out) values per layer", () => {
    const ref = reference("tiny-llama");
    const p = getPeftModel(tinyLlama(), { peftType: "LOHA", r: 4, targetModules: ["q_proj"] });
    const inputs = inputsOf(ref);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-6);
    expect(p.getNbTrainableParameters()[0]).toBe(2 * 2 * 4 * (64 + 64));
  });
});
