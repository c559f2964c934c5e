import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../test/helpers/fixtures.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import type { Tensor } from "../tensor/tensor.js";
import { AdamW } from "../train/optim/adamw.js";
import { getPeftModel, PeftModel } from "./peft-model.js";
import { LoraConfig } from "./tuners/lora/config.js";

const load = (name: string) => AutoModelForCausalLM.fromPretrained(fixturePath(`models/${name}`));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ref = reference("tiny-llama3");
const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
const logits = (p: PeftModel) => (p.forward(inputs as never) as { logits: Tensor }).logits;

/** The tensor keys and shapes of a saved adapter. */
function saved(dir: string): Record<string, number[]> {
  const f = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
  try {
    return Object.fromEntries(f.keys().map((k) => [k, f.entry(k).shape]));
  } finally {
    f.close();
  }
}

// Each family with the LoRA targets PEFT 0.13.2 would take (its default table, or for
// Phi-3, which has no entry, the fused layers named) and the [out, in] of each.
const CASES: [string, string[] | null, Record<string, [number, number]>][] = [
  ["tiny-llama3", null, { "self_attn.q_proj": [64, 64], "self_attn.v_proj": [32, 64] }],
  ["tiny-gemma", null, { "self_attn.q_proj": [96, 64], "self_attn.v_proj": [24, 64] }],
  ["tiny-gemma2", null, { "self_attn.q_proj": [96, 64], "self_attn.v_proj": [48, 64] }],
  ["tiny-mistral-sw", null, { "self_attn.q_proj": [64, 64], "self_attn.v_proj": [32, 64] }],
  [
    "tiny-phi3",
    ["qkv_proj", "gate_up_proj"],
    { "self_attn.qkv_proj": [128, 64], "mlp.gate_up_proj": [192, 64] },
  ],
];

describe("LoRA on every family saves PEFT's files", () => {
  it.each(CASES)("%s", (name, targetModules, shapes) => {
    const r = 4;
    const p = getPeftModel(load(name), new LoraConfig({ r, loraAlpha: 8, targetModules }));
    const x = inputs.inputIds;
    const params = p.model.parameters().filter((t) => t.requiresGrad);
    const opt = new AdamW(params, { lr: 1e-2 });
    const losses: number[] = [];
    p.train();
    for (let s = 0; s < 4; s++) {
      const { loss } = p.forward({ ...inputs, labels: x } as never) as { loss: Tensor };
      losses.push(loss.item() as number);
      loss.backward();
      opt.step();
      opt.zeroGrad();
    }
    expect(losses[3]).toBeLessThan(losses[0]);
    p.eval();

    const dir = mkdtempSync(join(tmpdir(), `peft-${name}-`));
    dirs.push(dir);
    p.savePretrained(dir);
    const expected: Record<string, number[]> = {};
    for (let layer = 0; layer < 2; layer++) {
      for (const [module, [out, inp]] of Object.entries(shapes)) {
        const key = `base_model.model.model.layers.${layer}.${module}`;
        expected[`${key}.lora_A.weight`] = [r, inp];
        expected[`${key}.lora_B.weight`] = [out, r];
      }
    }
    expect(saved(dir)).toEqual(expected);
    const config = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    const leaves = Object.keys(shapes).map((m) => m.split(".")[1]);
    expect([...config.target_modules].sort()).toEqual([...leaves].sort());
    expect(config.peft_type).toBe("LORA");
    expect(config.base_model_name_or_path).toContain(name);

    const back = PeftModel.fromPretrained(load(name), dir);
    expect(back.model.training).toBe(false);
    expect(maxAbsError(logits(back), logits(p))).toBe(0);
    // Merged into the fused layers too: the same function.
    back.mergeAdapter();
    expect(maxAbsError(logits(back), logits(p))).toBeLessThan(1e-5);
  });

  it("Phi-3 has no default LoRA targets in PEFT: they must be named", () => {
    expect(() => getPeftModel(load("tiny-phi3"), new LoraConfig({ r: 4 }))).toThrow(
      /target_?modules/i,
    );
  });
});
