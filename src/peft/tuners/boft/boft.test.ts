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
import { ValueError } from "../../../errors.js";
import { getPeftModel, PeftModel } from "../../peft-model.js";
import { BOFTConfig } from "./config.js";
import { BOFTLayer, butterflyPermutation } from "./layer.js";

describe("BOFT (PEFT 0.13.2)", () => {
  it.each(["llama-boft", "llama-boft-bf2"])(
    "%s gives PEFT's logits: active, disabled, merged, unmerged",
    (name) => {
      const p = expectFixtureLogits(name);
      expect(p.adapterLayers().every((l) => l instanceof BOFTLayer)).toBe(true);
    },
  );

  it.each(["llama-boft", "llama-boft-bf2"])(
    "%s saves what PEFT saves, reloads bit for bit",
    (name) => {
      expectSavedLikePeft(PeftModel.fromPretrained(tinyLlama(), adapterDir(name)), name);
    },
  );

  it("builds PEFT's butterfly permutations", () => {
    // down_proj of llama-boft-bf2: 128 features, 8 blocks of 16, factor 1 of 2.
    const perm = butterflyPermutation(128, 8, 16, 1, 2);
    expect(perm.slice(0, 32)).toEqual([
      ...[0, 1, 2, 3, 4, 5, 6, 7],
      ...[16, 17, 18, 19, 20, 21, 22, 23],
      ...[8, 9, 10, 11, 12, 13, 14, 15],
      ...[24, 25, 26, 27, 28, 29, 30, 31],
    ]);
    expect(butterflyPermutation(128, 8, 16, 0, 2)).toEqual([...Array(128).keys()]);
    expect(new Set(perm).size).toBe(128);
  });

  it("starts as the base model, trains, and refuses block settings that do not fit", () => {
    const ref = reference("tiny-llama");
    const inputs = inputsOf(ref);
    const p = getPeftModel(tinyLlama(), {
      peftType: "BOFT",
      boftBlockSize: 4,
      targetModules: ["q_proj"],
    });
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-6);
    // R [1, 16, 4, 4] and s [64, 1] per layer.
    expect(p.getNbTrainableParameters()[0]).toBe(2 * (16 * 16 + 64));
    expect(() => new BOFTConfig({ boftBlockSize: 4, boftBlockNum: 16 })).toThrow(ValueError);
    expect(() =>
      getPeftModel(tinyLlama(), { peftType: "BOFT", boftBlockSize: 6, targetModules: ["q_proj"] }),
    ).toThrow(/not divisible/);
  });
});
