import { describe, expect, it } from "vitest";
import { maxAbsError, reference } from "../../../../test/helpers/fixtures.js";
import { adapterDir, logitsOf, tinyLlama } from "../../../../test/helpers/method-fixtures.js";
import { ShapeError, ValueError } from "../../../errors.js";
import { slice } from "../../../tensor/ops/layout.js";
import { getPeftModel, PeftModel } from "../../peft-model.js";

const ref = reference("adapter-llama-lora-mixed-batch");
const NAMES = ["__base__", "alpha", "beta"];
const rows = [...ref.get("mixed_adapter_ids")!.toFloat32Array()].map((i) => NAMES[i]);
const inputs = {
  inputIds: ref.get("mixed_input_ids")!,
  attentionMask: ref.get("mixed_attention_mask")!,
};

function load(): PeftModel {
  const p = PeftModel.fromPretrained(tinyLlama(), adapterDir("llama-lora-mixed-batch/alpha"), {
    adapterName: "alpha",
  });
  p.loadAdapter(adapterDir("llama-lora-mixed-batch/beta"), "beta");
  return p;
}

describe("mixed-adapter batches (PEFT's adapter_names, llama-lora-mixed-batch)", () => {
  it("one forward gives each row its own adapter, as PEFT", () => {
    expect(rows).toEqual(["alpha", "beta", "__base__", "alpha"]);
    const p = load();
    expect(
      maxAbsError(logitsOf(p, { ...inputs, adapterNames: rows }), ref.get("logits_mixed")!),
    ).toBeLessThan(1e-5);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits_alpha")!)).toBeLessThan(1e-5);
    p.setAdapter("beta", false);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits_beta")!)).toBeLessThan(1e-5);
    const base = p.disableAdapter(() => logitsOf(p, inputs));
    expect(maxAbsError(base, ref.get("logits_base")!)).toBeLessThan(1e-5);
  });

  it("generates each row as that row alone with its adapter", () => {
    const p = load();
    const ids = slice(ref.get("input_ids")!, 1, 0, 8);
    const names = ["beta", "__base__"];
    const mixed = p.generate(ids, { maxNewTokens: 6, adapterNames: names });
    for (const [i, name] of names.entries()) {
      const row = slice(ids, 0, i, i + 1);
      const gen = () => p.generate(row, { maxNewTokens: 6 });
      if (name !== "__base__") p.setAdapter(name, false);
      const alone = name === "__base__" ? p.disableAdapter(gen) : gen();
      // A row that stops early (end of sequence) alone is padded in the batch.
      const own = [...alone.toFloat32Array()];
      const inBatch = [...slice(mixed, 0, i, i + 1).toFloat32Array()];
      expect(inBatch.slice(0, own.length)).toEqual(own);
      expect(new Set(inBatch.slice(own.length)).size).toBeLessThanOrEqual(1);
    }
  });

  it("refuses unknown names, a wrong count, merged adapters and DoRA", () => {
    const p = load();
    expect(() =>
      logitsOf(p, { ...inputs, adapterNames: ["alpha", "gamma", "alpha", "alpha"] }),
    ).toThrow(ValueError);
    expect(() => logitsOf(p, { ...inputs, adapterNames: ["alpha"] })).toThrow(ShapeError);
    p.mergeAdapter();
    expect(() => logitsOf(p, { ...inputs, adapterNames: rows })).toThrow(ValueError);
    const dora = getPeftModel(tinyLlama(), {
      peftType: "LORA",
      targetModules: ["q_proj"],
      useDora: true,
    });
    expect(() =>
      logitsOf(dora, { ...inputs, adapterNames: ["default", "__base__", "default", "default"] }),
    ).toThrow(/DoRA/);
  });
});
