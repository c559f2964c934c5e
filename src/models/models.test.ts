import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../test/helpers/fixtures.js";
import { expectLeftPaddingIsInvisible } from "../../test/helpers/left-padding.js";
import { FileFormatError, FileNotFoundError, ShapeError } from "../errors.js";
import { readJsonFile } from "../io/read-file.js";
import { slice } from "../tensor/ops/layout.js";
import { Tensor } from "../tensor/tensor.js";
import { AutoModelForCausalLM, AutoModelForSequenceClassification } from "./auto.js";

const model = (name: string) => fixturePath(`models/${name}`);

describe("logits match transformers 4.46 (float32, max abs error <= 1e-4)", () => {
  it.each(["tiny-llama", "tiny-qwen2", "tiny-gpt2"])("%s", (name) => {
    const ref = reference(name);
    const m = AutoModelForCausalLM.fromPretrained(model(name));
    const { logits } = m.forward({
      inputIds: ref.get("input_ids")!,
      attentionMask: ref.get("attention_mask")!,
    });
    expect(logits.shape).toEqual([2, 16, 256]);
    expect(logits.dtype).toBe("float32");
    // Measured: 2.4e-7 (llama), 3.0e-7 (qwen2), 2.1e-7 (gpt2); the fixtures' float64 gap is 2-3e-7.
    expect(maxAbsError(logits, ref.get("logits")!)).toBeLessThan(1e-6);
  });

  it("tiny-bert-cls", () => {
    const ref = reference("tiny-bert-cls");
    const m = AutoModelForSequenceClassification.fromPretrained(model("tiny-bert-cls"));
    const { logits } = m.forward({
      inputIds: ref.get("input_ids")!,
      attentionMask: ref.get("attention_mask")!,
    });
    expect(logits.shape).toEqual([2, 3]);
    expect(maxAbsError(logits, ref.get("logits")!)).toBeLessThan(1e-6);
  });

  it("tiny-llama-bf16 loaded as float32 equals the upcast reference", () => {
    const ref = reference("tiny-llama-bf16");
    const m = AutoModelForCausalLM.fromPretrained(model("tiny-llama-bf16"));
    const { logits } = m.forward({
      inputIds: ref.get("input_ids")!,
      attentionMask: ref.get("attention_mask")!,
    });
    expect(maxAbsError(logits, ref.get("logits")!)).toBeLessThan(1e-4);
  });

  it("tiny-llama-bf16 computed in bfloat16 stays within bf16 rounding of the reference", () => {
    const ref = reference("tiny-llama-bf16");
    const m = AutoModelForCausalLM.fromPretrained(model("tiny-llama-bf16"), { dtype: "auto" });
    expect(m.getModule("model.layers.0.self_attn.q_proj").stateDict().get("weight")!.dtype).toBe(
      "bfloat16",
    );
    const { logits } = m.forward({
      inputIds: ref.get("input_ids")!,
      attentionMask: ref.get("attention_mask")!,
    });
    expect(logits.dtype).toBe("bfloat16");
    // Every op's output is rounded to 8 mantissa bits (relative 2^-9) through 2 layers; the
    // logits are |x| < 0.6 where one bf16 ulp is 2^-9 = 0.002. Measured: max 3.7e-3, mean 6.8e-4.
    const err = maxAbsError(logits, ref.get("logits")!);
    expect(err).toBeLessThan(1e-2);
    expect(err).toBeGreaterThan(0); // really computed in bf16, not upcast
  });
});

describe("generate", () => {
  const ref = reference("tiny-llama");
  const m = AutoModelForCausalLM.fromPretrained(model("tiny-llama"));

  it("reproduces transformers' greedy generated_ids exactly", () => {
    const out = m.generate(slice(ref.get("input_ids")!, 0, 0, 1), { maxNewTokens: 8 });
    expect(out.toArray()).toEqual(ref.get("generated_ids")!.toArray());
  });

  it("gives a left-padded row the same tokens as the row alone", () =>
    expectLeftPaddingIsInvisible(m, ref.get("input_ids")!.toArray() as number[][]));

  it("streams each step, stops rows at EOS and pads them, and restores train mode", () => {
    const steps: number[][] = [];
    let ended = 0;
    const prompt = slice(ref.get("input_ids")!, 0, 0, 1);
    const greedy = (ref.get("generated_ids")!.toArray() as number[][])[0].slice(16);
    m.train();
    const out = m.generate(prompt, {
      maxNewTokens: 8,
      eosTokenId: greedy[2],
      padTokenId: 0,
      streamer: { put: (t) => steps.push(t), end: () => ended++ },
    });
    expect(m.training).toBe(true);
    m.eval();
    expect(steps).toEqual(greedy.slice(0, 3).map((t) => [t]));
    expect(ended).toBe(1);
    expect((out.toArray() as number[][])[0].slice(16)).toEqual(greedy.slice(0, 3));
  });

  it("samples reproducibly from a seed, and top-k 1 is greedy", () => {
    const prompt = slice(ref.get("input_ids")!, 0, 0, 1);
    const a = m
      .generate(prompt, { maxNewTokens: 5, doSample: true, temperature: 0.7, topP: 0.9, seed: 3 })
      .toArray();
    expect(
      m
        .generate(prompt, { maxNewTokens: 5, doSample: true, temperature: 0.7, topP: 0.9, seed: 3 })
        .toArray(),
    ).toEqual(a);
    const greedy = (ref.get("generated_ids")!.toArray() as number[][])[0].slice(0, 21);
    expect(
      (
        m
          .generate(prompt, { maxNewTokens: 5, doSample: true, topK: 1, seed: 9 })
          .toArray() as number[][]
      )[0],
    ).toEqual(greedy);
  });

  it("works in bfloat16 and on GPT-2", () => {
    const prompt = slice(ref.get("input_ids")!, 0, 0, 1);
    const bf = AutoModelForCausalLM.fromPretrained(model("tiny-llama"), { dtype: "bfloat16" });
    expect(bf.generate(prompt, { maxNewTokens: 4 }).shape).toEqual([1, 20]);
    const gpt2 = AutoModelForCausalLM.fromPretrained(model("tiny-gpt2"));
    expect(gpt2.generate(prompt, { maxNewTokens: 4 }).shape).toEqual([1, 20]);
  });
});

describe("training signals", () => {
  it("returns the shifted next-token loss and gradients for the weights", () => {
    const ref = reference("tiny-llama");
    const m = AutoModelForCausalLM.fromPretrained(model("tiny-llama"));
    const ids = slice(ref.get("input_ids")!, 0, 0, 1);
    const { logits, loss } = m.forward({ inputIds: ids, labels: ids });
    // Independent: mean over t of -log softmax(logits[t])[ids[t+1]].
    const v = logits.toFloat32Array();
    const t = ids.toFlatNumbers();
    let s = 0;
    for (let i = 0; i < 15; i++) {
      const row = Array.from(v.subarray(i * 256, (i + 1) * 256));
      const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
      s += lse - row[t[i + 1]];
    }
    expect(loss!.item()).toBeCloseTo(s / 15, 5);
    const q = m.getModule("model.layers.0.self_attn.q_proj").stateDict().get("weight")!;
    q.requiresGrad = true;
    m.forward({ inputIds: ids, labels: ids }).loss!.backward();
    expect(q.grad!.shape).toEqual([64, 64]);
  });
});

describe("bad input", () => {
  function copyModel(name: string): string {
    const dir = mkdtempSync(join(tmpdir(), "peft-model-"));
    cpSync(model(name), dir, { recursive: true });
    return dir;
  }

  it("names a missing or wrong-typed config field", () => {
    const dir = copyModel("tiny-llama");
    const cfg = readJsonFile(join(dir, "config.json")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, hidden_size: "64" }));
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
      /field "hidden_size" should be an integer >= 1, found "64"/,
    );
    const { num_hidden_layers: _, ...rest } = cfg;
    writeFileSync(join(dir, "config.json"), JSON.stringify(rest));
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
      /field "num_hidden_layers" should be an integer >= 1, found nothing/,
    );
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ ...cfg, rope_scaling: { rope_type: "magic", factor: 2 } }),
    );
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
      /rope_scaling type "magic" is not supported; supported: default, linear, dynamic, yarn, longrope, llama3/,
    );
    writeFileSync(join(dir, "config.json"), "{ not json");
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(FileFormatError);
    rmSync(dir, { recursive: true });
  });

  it("rejects unknown architectures with the supported list", () => {
    const dir = copyModel("tiny-llama");
    const cfg = readJsonFile(join(dir, "config.json")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, model_type: "mamba" }));
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
      /model_type "mamba" is not supported by AutoModelForCausalLM; supported: llama, qwen2, mistral, gemma, gemma2, phi3, gpt2/,
    );
    expect(() => AutoModelForSequenceClassification.fromPretrained(model("tiny-llama"))).toThrow(
      /supported: bert/,
    );
    rmSync(dir, { recursive: true });
  });

  it("explains missing weights, shape mismatches and missing directories", () => {
    const dir = copyModel("tiny-llama");
    rmSync(join(dir, "model.safetensors"));
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
      /no model weights: expected model.safetensors or model.safetensors.index.json/,
    );
    const dir2 = copyModel("tiny-llama");
    const cfg = readJsonFile(join(dir2, "config.json")) as Record<string, unknown>;
    writeFileSync(join(dir2, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 96 }));
    expect(() => AutoModelForCausalLM.fromPretrained(dir2)).toThrow(ShapeError);
    expect(() => AutoModelForCausalLM.fromPretrained(dir2)).toThrow(
      /"model.layers.0.mlp.gate_proj.weight" .* has shape \[128, 64\], but the model built from config.json expects \[96, 64\]/,
    );
    expect(() => AutoModelForCausalLM.fromPretrained("/nonexistent/model")).toThrow(
      FileNotFoundError,
    );
    rmSync(dir, { recursive: true });
    rmSync(dir2, { recursive: true });
  });

  it("checks forward inputs", () => {
    const m = AutoModelForCausalLM.fromPretrained(model("tiny-llama"));
    expect(() => m.forward({ inputIds: Tensor.from([1, 2, 3]) })).toThrow(
      /expected inputIds of shape \[batch, seq\]/,
    );
    expect(() =>
      m.forward({ inputIds: Tensor.from([[1, 2, 3]]), attentionMask: Tensor.from([[1, 1]]) }),
    ).toThrow(/attentionMask of shape \[1, 2\] does not match the 3 key positions/);
    expect(() => m.forward({ inputIds: Tensor.from([[1, 300]]) })).toThrow(
      /id 300 at flat position 1 is out of range/,
    );
  });
});

describe("sharded checkpoints", () => {
  it("load from model.safetensors.index.json and give the same logits", async () => {
    const { SafetensorsFile } = await import("../io/safetensors/reader.js");
    const { saveSafetensors } = await import("../io/safetensors/writer.js");
    const dir = mkdtempSync(join(tmpdir(), "peft-shards-"));
    cpSync(join(model("tiny-llama"), "config.json"), join(dir, "config.json"));
    const all = SafetensorsFile.open(join(model("tiny-llama"), "model.safetensors")).loadAll();
    const names = [...all.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((keys, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      saveSafetensors(join(dir, file), new Map(keys.map((k) => [k, all.get(k)!])), {
        format: "pt",
      });
      for (const k of keys) weightMap[k] = file;
    });
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const ref = reference("tiny-llama");
    const m = AutoModelForCausalLM.fromPretrained(dir);
    const { logits } = m.forward({
      inputIds: ref.get("input_ids")!,
      attentionMask: ref.get("attention_mask")!,
    });
    expect(maxAbsError(logits, ref.get("logits")!)).toBeLessThan(1e-6);
    weightMap[names[0]] = "model-00002-of-00002.safetensors";
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: weightMap }),
    );
    expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
      /the index places tensor .* in this shard, but the shard does not contain it/,
    );
    for (const shard of [".", "..", "", "../model.safetensors"]) {
      writeFileSync(
        join(dir, "model.safetensors.index.json"),
        JSON.stringify({ weight_map: { ...weightMap, [names[0]]: shard } }),
      );
      expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
        /should be a shard file name, found/,
      );
    }
    rmSync(dir, { recursive: true });
  });
});
