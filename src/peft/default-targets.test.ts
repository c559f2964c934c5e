import { describe, expect, it } from "vitest";
import { fixturePath } from "../../test/helpers/fixtures.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { getPeftModel, type PeftModel } from "./peft-model.js";
import type { AdapterConfigInit } from "./registry.js";
import type { IA3Layer } from "./tuners/ia3/layer.js";

const load = (name: string) => AutoModelForCausalLM.fromPretrained(fixturePath(`models/${name}`));
const wrapped = (p: PeftModel) =>
  [...new Set(p.adapterLayers().map((l) => l.path.split(".").at(-1)!))].sort();

describe("PEFT's default targets when targetModules is null", () => {
  it.each([
    ["tiny-llama", { peftType: "LORA" }, ["q_proj", "v_proj"]],
    ["tiny-llama", { peftType: "VERA", r: 4 }, ["q_proj", "v_proj"]],
    ["tiny-llama", { peftType: "BOFT" }, ["q_proj", "v_proj"]],
    ["tiny-llama", { peftType: "ADALORA", totalStep: 10 }, ["q_proj", "v_proj"]],
    ["tiny-llama", { peftType: "IA3" }, ["down_proj", "k_proj", "v_proj"]],
    [
      "tiny-llama",
      { peftType: "LN_TUNING" },
      ["input_layernorm", "norm", "post_attention_layernorm"],
    ],
    ["tiny-qwen2", { peftType: "IA3" }, ["down_proj", "q_proj", "v_proj"]],
    ["tiny-gpt2", { peftType: "LORA" }, ["c_attn"]],
    ["tiny-gpt2", { peftType: "IA3" }, ["c_attn", "c_proj"]],
  ] as const)("%s %j wraps %j", (model, config, expected) => {
    const p = getPeftModel(load(model), config as AdapterConfigInit);
    expect(wrapped(p)).toEqual(expected);
    expect(p.peftConfig.get("default")!.toJson().target_modules).toEqual(
      expected.length && expect.any(Array),
    );
  });

  it("IA3 takes PEFT's feed-forward modules too: the MLP's down projection scales its input", () => {
    const p = getPeftModel(load("tiny-llama"), {
      peftType: "IA3",
      targetModules: ["down_proj", "v_proj"],
    });
    expect(p.peftConfig.get("default")!.toJson().feedforward_modules).toEqual(["down_proj"]);
    for (const l of p.adapterLayers() as IA3Layer[])
      expect(l.settingsOf("default").feedforward).toBe(l.path.endsWith("down_proj"));
  });

  it("refuses where PEFT has no table, naming the method and the model type", () => {
    expect(() => getPeftModel(load("tiny-llama"), { peftType: "LOHA" })).toThrow(
      /targetModules is required: PEFT has no default LOHA targets for model_type "llama"/,
    );
  });
});
