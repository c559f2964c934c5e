import { describe, expect, it } from "vitest";
import { maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import {
  adapterDir,
  expectFixtureLogits,
  expectSavedLikePeft,
  expectTrainStep,
  inputsOf,
  logitsOf,
  tinyLlama,
} from "../../../../test/helpers/method-fixtures.js";
import { randn } from "../../../tensor/creation.js";
import { transpose } from "../../../tensor/ops/layout.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import { getPeftModel, PeftModel } from "../../peft-model.js";
import { cayley } from "./cayley.js";
import { OFTLayer } from "./layer.js";

describe("OFT (PEFT 0.13.2)", () => {
  it.each(["llama-oft", "llama-oft-coft", "llama-oft-block-share"])(
    "%s gives PEFT's logits: active, disabled, merged, unmerged",
    (name) => {
      const p = expectFixtureLogits(name);
      expect(p.adapterLayers().every((l) => l instanceof OFTLayer)).toBe(true);
    },
  );

  it.each(["llama-oft", "llama-oft-block-share"])(
    "%s saves what PEFT saves and reloads bit for bit",
    (name) => {
      const p = PeftModel.fromPretrained(tinyLlama(), adapterDir(name));
      expectSavedLikePeft(p, name);
    },
  );

  it("COFT projects the saved blocks when loaded; skipping it moves the logits far more", () => {
    const ref = reference("adapter-llama-oft-coft");
    const inputs = inputsOf(ref);
    const p = PeftModel.fromPretrained(tinyLlama(), adapterDir("llama-oft-coft"));
    const base = p.disableAdapter(() => logitsOf(p, inputs));
    expect(maxAbsError(logitsOf(p, inputs), base)).toBeLessThan(3e-3);
    const unprojected = PeftModel.fromPretrained(tinyLlama(), adapterDir("llama-oft-coft"));
    for (const l of unprojected.adapterLayers()) (l as OFTLayer).settingsOf("default").coft = false;
    expect(maxAbsError(logitsOf(unprojected, inputs), base)).toBeGreaterThan(0.05);
  });

  it("reproduces PEFT's training step (diagonal entries get no gradient)", () => {
    expectTrainStep("llama-oft");
  });

  it("Cayley blocks are rotations", () => {
    const q = cayley(randn([3, 5, 5], { seed: 3, dtype: "float64" }));
    const p = matmul(transpose(q), q).data as Float64Array;
    for (let m = 0; m < 3; m++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 5; j++)
          expect(Math.abs(p[m * 25 + i * 5 + j] - (i === j ? 1 : 0))).toBeLessThan(1e-12);
  });

  it("starts as the base model", () => {
    const ref = reference("tiny-llama");
    const inputs = inputsOf(ref);
    const p = getPeftModel(tinyLlama(), { peftType: "OFT", r: 8, targetModules: ["q_proj"] });
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-6);
    expect(p.getNbTrainableParameters()[0]).toBe(2 * 8 * 8 * 8);
  });
});
