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
import { Tensor } from "../../../tensor/tensor.js";
import { getPeftModel } from "../../peft-model.js";
import { factorization, kron } from "./layer.js";

describe("LoKr (PEFT 0.13.2's llama-lokr)", () => {
  it("gives PEFT 0.13.2's logits (no alpha/r factor), disabled and merged too", () => {
    const p = expectFixtureLogits("llama-lokr");
    // PEFT 0.14 multiplies by alpha/r = 2: these logits must differ from those.
    const ref = reference("adapter-llama-lokr");
    const inputs = inputsOf(ref);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits_peft_0_14_0")!)).toBeGreaterThan(0.1);
  });

  it("saves the keys, shapes and config PEFT saves, and reloads them bit for bit", () => {
    expectSavedLikePeft(expectFixtureLogits("llama-lokr"), "llama-lokr");
  });

  it("reproduces PEFT's training step", () => {
    expectTrainStep("llama-lokr");
  });

  it("factorises dimensions as PEFT does", () => {
    expect(factorization(64)).toEqual([8, 8]);
    expect(factorization(32)).toEqual([4, 8]);
    expect(factorization(128)).toEqual([8, 16]);
    expect(factorization(4096, 8)).toEqual([8, 512]);
    expect(factorization(97)).toEqual([1, 97]);
    expect(factorization(96, 5)).toEqual([4, 24]);
  });

  it("kron matches the definition", () => {
    const a = Tensor.from([
      [1, 2],
      [3, 4],
    ]).to("float32");
    const b = Tensor.from([[0, 5, 6]]).to("float32");
    expect([...kron(a, b).toFloat32Array()]).toEqual([0, 5, 6, 0, 10, 12, 0, 15, 18, 0, 20, 24]);
    expect(kron(a, b).shape).toEqual([2, 6]);
  });

  it("splits factors into rank-r products where the rank is small (decompose_both)", () => {
    const p = getPeftModel(tinyLlama(), {
      peftType: "LOKR",
      r: 1,
      decomposeBoth: true,
      targetModules: ["q_proj"],
    });
    const keys = [...p.adapterStateDict().keys()].map((k) => k.split(".").pop());
    expect(new Set(keys)).toEqual(new Set(["lokr_w1_a", "lokr_w1_b", "lokr_w2_a", "lokr_w2_b"]));
    const ref = reference("tiny-llama");
    const inputs = inputsOf(ref);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-6);
  });
});
