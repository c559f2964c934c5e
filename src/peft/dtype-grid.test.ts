import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../test/helpers/fixtures.js";
import type { FloatDType } from "../backend/dtype.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { slice } from "../tensor/ops/layout.js";
import type { Tensor } from "../tensor/tensor.js";
import { AdamW } from "../train/optim/adamw.js";
import { PeftModel } from "./peft-model.js";

/**
 * DESIGN.md's dtype grid: base dtype x adapter dtype x method x {eval forward, train step,
 * generate, merged forward}. Nothing may throw, and every result stays within its dtype's
 * tolerance of a float64 model carrying the same adapter.
 */
const METHODS = ["llama-lora", "llama-dora", "llama-vera"];
const BASES: FloatDType[] = ["float32", "bfloat16", "float16"];
const ADAPTERS: (FloatDType | "auto")[] = ["auto", "float32", "bfloat16", "float16"];

// Logits of tiny-llama are |x| < 1.1, where one bf16 ulp is at most 2^-8 and one f16 ulp 2^-11.
// Measured worst cases over the grid: f32 9e-8, f16 8.9e-4, bf16 5.8e-3; bounds ~4x above.
const TOLERANCE: Record<FloatDType, number> = {
  float64: 1e-9,
  float32: 1e-6,
  float16: 4e-3,
  bfloat16: 2e-2,
};
const worst = (a: FloatDType | "auto", b: FloatDType): number =>
  Math.max(TOLERANCE[b], a === "auto" ? 0 : TOLERANCE[a]);

const ref = reference("adapter-llama-lora");
const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
const trainIds = slice(ref.get("input_ids")!, 0, 0, 1);

function load(
  method: string,
  base: FloatDType,
  adapterDtype?: FloatDType,
  trainable = false,
): PeftModel {
  const model = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama"), {
    dtype: base,
  });
  return PeftModel.fromPretrained(model, fixturePath(`adapters/${method}`), {
    adapterDtype,
    isTrainable: trainable,
  });
}

const logits = (p: PeftModel) => (p.forward(inputs as never) as { logits: Tensor }).logits;

describe.each(METHODS)("%s", (method) => {
  const exact = load(method, "float64");
  const exactLogits = logits(exact);
  const exactLoss = exact.forward({ inputIds: trainIds, labels: trainIds } as never) as {
    loss: Tensor;
  };
  const lossValue = exactLoss.loss.item() as number;

  describe.each(BASES)("base %s", (base) => {
    it.each(ADAPTERS)(
      "adapter dtype %s: forward, train step, generate, merged forward",
      (adapterDtype) => {
        const tol = worst(adapterDtype, base);
        const p = load(method, base, adapterDtype === "auto" ? undefined : adapterDtype, true);
        // "auto": float32 on every base (PEFT's autocast_adapter_dtype=True).
        const expectedAdapter = adapterDtype === "auto" ? "float32" : adapterDtype;
        for (const t of p.adapterStateDict().values()) expect(t.dtype).toBe(expectedAdapter);

        // Eval forward.
        p.eval();
        const y = logits(p);
        expect(y.dtype).toBe(base);
        expect(maxAbsError(y, exactLogits)).toBeLessThan(tol);

        // Train step: gradients arrive in each adapter weight's own dtype.
        p.train();
        const out = p.forward({ inputIds: trainIds, labels: trainIds } as never) as {
          loss: Tensor;
        };
        expect(Math.abs((out.loss.item() as number) - lossValue)).toBeLessThan(tol);
        out.loss.backward();
        const params = p.model.parameters().filter((t) => t.requiresGrad);
        expect(params.length).toBeGreaterThan(0);
        for (const t of params) {
          expect(t.grad).not.toBeNull();
          expect(t.grad!.dtype).toBe(t.dtype);
          expect(t.grad!.toFloat32Array().every(Number.isFinite)).toBe(true);
        }
        new AdamW(params, { lr: 1e-3 }).step();

        // Generate, as from inside a training callback (the model stays in train mode afterwards).
        const gen = p.generate(trainIds, { maxNewTokens: 3 });
        expect(gen.shape).toEqual([1, 19]);
        expect(p.model.training).toBe(true);

        // Merged forward agrees with the unmerged one within the base dtype's rounding.
        p.eval();
        const before = logits(p);
        p.mergeAdapter();
        expect(maxAbsError(logits(p), before)).toBeLessThan(tol);
      },
    );
  });
});
