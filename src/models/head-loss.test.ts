import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError } from "../../test/helpers/fixtures.js";
import { ValueError } from "../errors.js";
import { getPeftModel } from "../peft/peft-model.js";
import { randint } from "../tensor/creation.js";
import { autocast } from "../tensor/state.js";
import { markWritten } from "../tensor/storage-version.js";
import type { Tensor } from "../tensor/tensor.js";
import { AutoModelForCausalLM } from "./auto.js";
import { nextTokenLoss } from "./common.js";
import type { CausalLMOutput } from "./output.js";

const load = (name: string) => AutoModelForCausalLM.fromPretrained(fixturePath(`models/${name}`));

/** A LoRA model (its lm_head too where `head`), so the hidden states need gradients. */
function peft(name: string, head = false) {
  const p = getPeftModel(load(name), {
    peftType: "LORA",
    r: 4,
    targetModules: head ? ["q_proj", "v_proj", "lm_head"] : ["q_proj", "v_proj", "c_attn"],
    initLoraWeights: false,
  });
  p.train();
  return p;
}

const forward = (p: ReturnType<typeof peft>, inputs: object) =>
  p.forward(inputs as never) as unknown as CausalLMOutput;

/** The loss and the adapter's gradients, by the model's own loss or from its logits. */
function lossAndGrads(p: ReturnType<typeof peft>, fromLogits: boolean) {
  const vocab = (p.model as unknown as { config: { vocabSize: number } }).config.vocabSize;
  const ids = randint(0, vocab, [2, 9], { seed: 3 });
  const trained = p.model.parameters().filter((t) => t.requiresGrad);
  for (const t of trained) t.grad = null;
  const loss = fromLogits
    ? nextTokenLoss(forward(p, { inputIds: ids }).logits, ids)
    : forward(p, { inputIds: ids, labels: ids }).loss!;
  loss.backward();
  return { loss: loss.item() as number, grads: trained.map((t) => t.grad!) };
}

describe("the next-token loss of a model with a plain linear head", () => {
  // Tied (Qwen2, GPT-2) and untied (Llama) heads take the path without logits; a softcap
  // (Gemma 2) or an adapter on lm_head keeps the logits: all give the same loss.
  it.each([
    ["tiny-llama", false],
    ["tiny-qwen2", false],
    ["tiny-gpt2", false],
    ["tiny-gemma2", false],
    ["tiny-llama", true],
  ])(
    "equals the loss of its logits, with the same gradients: %s (LoRA on lm_head: %s)",
    (name, head) => {
      const p = peft(name, head);
      const fused = lossAndGrads(p, false);
      const plain = lossAndGrads(p, true);
      expect(Math.abs(fused.loss - plain.loss)).toBeLessThan(1e-6);
      expect(fused.grads.length).toBe(plain.grads.length);
      fused.grads.forEach((g, i) => expect(maxAbsError(g, plain.grads[i])).toBeLessThan(1e-6));
      // Which path ran: logits left to be computed on reading, or computed.
      const ids = randint(0, 32, [1, 4], { seed: 1 });
      const out = forward(p, { inputIds: ids, labels: ids });
      const lazy = Object.getOwnPropertyDescriptor(out, "logits")?.get !== undefined;
      expect(lazy).toBe(!head && name !== "tiny-gemma2");
    },
  );

  it("computes the logits when they are read, as the forward call would have (autocast included)", () => {
    const p = peft("tiny-llama");
    const ids = randint(0, 64, [2, 9], { seed: 4 });
    const eager = autocast("bfloat16", () => forward(p, { inputIds: ids }).logits);
    const out = autocast("bfloat16", () => forward(p, { inputIds: ids, labels: ids }));
    const lazy: Tensor = out.logits;
    expect(lazy.dtype).toBe("bfloat16");
    expect(lazy.requiresGrad).toBe(true);
    expect(maxAbsError(lazy, eager)).toBe(0);
    expect(out.logits).toBe(lazy);
  });

  it("refuses to compute logits from head weights written after the forward call", () => {
    const p = peft("tiny-llama");
    const ids = randint(0, 64, [2, 9], { seed: 5 });
    const out = forward(p, { inputIds: ids, labels: ids });
    const head = p.model.getModule("lm_head") as unknown as { weight: Tensor };
    markWritten(head.weight.data);
    expect(() => out.logits).toThrow(ValueError);
    expect(() => out.logits).toThrow(/read them before changing the weights/);
  });

  // PEFT's tied head shares the wrapped embedding's parameter: the adapter changes the
  // inputs' embeddings, not the head.
  it.each([
    ["tiny-qwen2", "embed_tokens"],
    ["tiny-gpt2", "wte"],
  ])(
    "keeps a head tied to embeddings an adapter wraps on the embedding's own weight: %s",
    (name, target) => {
      const p = getPeftModel(load(name), {
        peftType: "LORA",
        r: 4,
        targetModules: [target],
        initLoraWeights: false,
      });
      const ids = randint(0, 32, [2, 6], { seed: 6 });
      const base = p.model as unknown as { embedTokens(ids: Tensor): Tensor };
      const embeds = base.embedTokens(ids);
      const out = forward(p, { inputIds: ids, labels: ids });
      const want = p.disableAdapter(() => forward(p, { inputsEmbeds: embeds, labels: ids }));
      expect(maxAbsError(out.logits, want.logits)).toBeLessThan(1e-6);
      expect(Math.abs((out.loss!.item() as number) - (want.loss!.item() as number))).toBeLessThan(
        1e-6,
      );
      out.loss!.backward();
      const grads = p.model.parameters().filter((t) => t.requiresGrad);
      expect(grads.length).toBe(2);
      for (const t of grads) expect(maxAbsError(t.grad!, t.grad!.mul(0))).toBeGreaterThan(0);
    },
  );
});
