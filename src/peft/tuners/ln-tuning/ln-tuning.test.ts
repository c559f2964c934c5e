import { describe, expect, it } from "vitest";
import { maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import {
  adapterDir,
  expectFixtureLogits,
  expectSavedLikePeft,
  inputsOf,
  logitsOf,
  tinyLlama,
} from "../../../../test/helpers/method-fixtures.js";
import { RMSNorm } from "../../../nn/layers.js";
import { getPeftModel, PeftModel } from "../../peft-model.js";
import { LNTuningLayer } from "./layer.js";

const ref = reference("adapter-llama-ln-tuning");
const inputs = inputsOf(ref);

describe("LN tuning (PEFT 0.13.2's llama-ln-tuning)", () => {
  it("gives PEFT's logits: active, disabled, merged (bit for bit), unmerged", () => {
    const p = expectFixtureLogits("llama-ln-tuning");
    expect(p.adapterLayers()).toHaveLength(5);
    expect(p.adapterLayers().every((l) => l instanceof LNTuningLayer)).toBe(true);
    // Merging swaps the modules: our merged logits equal our unmerged ones bit for bit.
    const y = logitsOf(p, inputs);
    p.mergeAdapter();
    expect(maxAbsError(logitsOf(p, inputs), y)).toBe(0);
  });

  it("saves what PEFT saves and reloads bit for bit", () => {
    expectSavedLikePeft(
      PeftModel.fromPretrained(tinyLlama(), adapterDir("llama-ln-tuning")),
      "llama-ln-tuning",
    );
  });

  it("merge and unload leaves the tuned norms in the plain model", () => {
    const p = PeftModel.fromPretrained(tinyLlama(), adapterDir("llama-ln-tuning"));
    const y = logitsOf(p, inputs);
    const merged = p.mergeAndUnload();
    expect(merged.getModule("model.norm")).toBeInstanceOf(RMSNorm);
    const out = (merged.forward(inputs as never) as { logits: typeof y }).logits;
    expect(maxAbsError(out, y)).toBe(0);
  });

  it("starts as the base model and trains the copies only", () => {
    const p = getPeftModel(tinyLlama(), {
      peftType: "LN_TUNING",
      targetModules: ["input_layernorm", "post_attention_layernorm", "norm"],
    });
    const base = p.disableAdapter(() => logitsOf(p, inputs));
    expect(maxAbsError(logitsOf(p, inputs), base)).toBe(0);
    expect(p.getNbTrainableParameters()[0]).toBe(5 * 64);
  });
});
