import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { SafetensorsFile } from "../../src/io/safetensors/reader.js";
import { AutoModelForCausalLM } from "../../src/models/auto.js";
import { PeftModel } from "../../src/peft/peft-model.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { AdamW } from "../../src/train/optim/adamw.js";
import { fixturePath, maxAbsError, reference } from "./fixtures.js";

export const tinyLlama = () =>
  AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama"));
export const adapterDir = (name: string) => fixturePath(`adapters/${name}`);

/** A reference file's inputs: its input_ids and attention_mask. */
export function inputsOf(ref: Map<string, Tensor>): { inputIds: Tensor; attentionMask: Tensor } {
  return { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
}

/** Training examples from the first 12 tokens of each of tiny-llama's reference rows. */
export function referenceExamples(rows: number): { inputIds: number[]; labels: number[] }[] {
  const ids = Array.from(reference("tiny-llama").get("input_ids")!.toFloat32Array());
  return Array.from({ length: rows }, (_, r) => {
    const row = ids.slice(r * 16, r * 16 + 12);
    return { inputIds: row, labels: row };
  });
}

export function logitsOf(p: PeftModel, inputs: object): Tensor {
  return (p.forward(inputs as never) as { logits: Tensor }).logits;
}

/**
 * A PEFT 0.13.2 adapter fixture loaded with fromPretrained gives PEFT's logits, with the
 * adapter disabled the base model's, and merged the merged model's (each where stored).
 */
export function expectFixtureLogits(name: string, tol = 1e-5): PeftModel {
  const ref = reference(`adapter-${name}`);
  const inputs = inputsOf(ref);
  const p = PeftModel.fromPretrained(tinyLlama(), adapterDir(name));
  expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(tol);
  if (ref.has("logits_disabled"))
    expect(
      maxAbsError(
        p.disableAdapter(() => logitsOf(p, inputs)),
        ref.get("logits_disabled")!,
      ),
    ).toBeLessThan(tol);
  if (ref.has("logits_merged")) {
    p.mergeAdapter();
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits_merged")!)).toBeLessThan(tol);
    p.unmergeAdapter();
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(tol);
  }
  return p;
}

function listing(file: string): Map<string, string> {
  const f = SafetensorsFile.open(file);
  try {
    return new Map(
      f.keys().map((k) => [k, `${f.entry(k).dtype} [${f.entry(k).shape.join(", ")}]`]),
    );
  } finally {
    f.close();
  }
}

/** A JSON value with lists that PEFT stores as sets (target_modules) in a stable order. */
function normalise(json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json))
    out[k] = Array.isArray(v) && v.every((x) => typeof x === "string") ? [...v].sort() : v;
  return out;
}

/**
 * savePretrained writes what PEFT wrote: the same tensor keys, shapes and dtypes and the
 * same adapter_config.json (keys and values); reloading gives the same tensors bit for bit.
 */
export function expectSavedLikePeft(p: PeftModel, name: string): void {
  const dir = mkdtempSync(join(tmpdir(), "peft-method-"));
  try {
    p.savePretrained(dir);
    const weights = (d: string) => join(d, "adapter_model.safetensors");
    expect(listing(weights(dir))).toEqual(listing(weights(adapterDir(name))));
    const config = (d: string) =>
      normalise(JSON.parse(readFileSync(join(d, "adapter_config.json"), "utf8")));
    expect(config(dir)).toEqual(config(adapterDir(name)));
    const back = PeftModel.fromPretrained(tinyLlama(), dir);
    const mine = p.adapterStateDict();
    for (const [k, t] of back.adapterStateDict())
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(mine.get(k)!.data.buffer)), k).toBe(
        true,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * PEFT's one-step reference (adapter-<name>-train-step): train mode, AdamW lr 1e-2 without
 * weight decay, one step on row 0 with labels = inputs; the losses before and after and
 * every updated tensor. `build` makes the adapter in its initial (saved) state.
 */
export function expectTrainStep(
  name: string,
  build: () => PeftModel = () =>
    PeftModel.fromPretrained(tinyLlama(), adapterDir(name), { isTrainable: true }),
): void {
  const ref = reference(`adapter-${name}-train-step`);
  const p = build();
  p.train();
  const x = ref.get("input_ids")!;
  const params = p.model.parameters().filter((t) => t.requiresGrad);
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
  const loss = () => (p.forward({ inputIds: x, labels: x } as never) as { loss: Tensor }).loss;
  const before = loss();
  expect(
    Math.abs((before.item() as number) - (ref.get("loss_before")!.item() as number)),
  ).toBeLessThan(1e-5);
  before.backward();
  opt.step();
  expect(
    Math.abs((loss().item() as number) - (ref.get("loss_after")!.item() as number)),
  ).toBeLessThan(1e-5);
  const state = p.adapterStateDict();
  let compared = 0;
  for (const [key, expected] of ref) {
    if (key === "input_ids" || key.startsWith("loss_")) continue;
    const mine = state.get(key) ?? state.get(`base_model.model.${key}`);
    expect(mine, key).toBeDefined();
    expect(maxAbsError(mine!, expected), key).toBeLessThan(5e-5);
    compared++;
  }
  expect(compared).toBeGreaterThan(0);
}
