import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../test/helpers/fixtures.js";
import { FileFormatError, FileNotFoundError, ShapeError, ValueError } from "../errors.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { AutoModelForCausalLM, AutoModelForSequenceClassification } from "../models/auto.js";
import type { Tensor } from "../tensor/tensor.js";
import { AdamW } from "../train/optim/adamw.js";
import { CONFIG_HASH_KEY } from "./adapter-files.js";
import { getPeftModel, PeftModel, toConfig } from "./peft-model.js";
import { LoraConfig } from "./tuners/lora/config.js";
import { makeProjections } from "./tuners/vera/model.js";

const model = (name: string) => AutoModelForCausalLM.fromPretrained(fixturePath(`models/${name}`));
const adapter = (name: string) => fixturePath(`adapters/${name}`);
const logitsOf = (p: { forward(i: never): unknown }, inputs: object) =>
  (p.forward(inputs as never) as { logits: Tensor }).logits;
const tmp = () => mkdtempSync(join(tmpdir(), "peft-adapter-"));

const CAUSAL: [string, string][] = [
  ["llama-lora", "tiny-llama"],
  ["llama-lora-rslora-all-linear", "tiny-llama"],
  ["llama-dora", "tiny-llama"],
  ["gpt2-lora", "tiny-gpt2"],
  ["llama-vera", "tiny-llama"],
];

// The fixture README recommends atol 1e-5 for float32 logits (float32 noise is 2e-7 to 8e-7;
// summation orders differ between backends). Measured on the reference backend: <= 1e-6.
describe("PEFT 0.13.2 adapters reproduce their reference logits (float32, atol 1e-5)", () => {
  it.each(CAUSAL)("%s on %s: active, merged and disabled", (name, base) => {
    const ref = reference(`adapter-${name}`);
    const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
    const p = PeftModel.fromPretrained(model(base), adapter(name));
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-5);
    if (ref.has("logits_disabled")) {
      expect(
        maxAbsError(
          p.disableAdapter(() => logitsOf(p, inputs)),
          ref.get("logits_disabled")!,
        ),
      ).toBeLessThan(1e-5);
    }
    p.mergeAdapter();
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits_merged")!)).toBeLessThan(1e-5);
  });

  it("bert-vera: VeRA over dense layers of three shapes plus a trained classifier copy", () => {
    const ref = reference("adapter-bert-vera");
    const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
    const p = PeftModel.fromPretrained(
      AutoModelForSequenceClassification.fromPretrained(fixturePath("models/tiny-bert-cls")),
      adapter("bert-vera"),
    );
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-7);
    p.mergeAdapter();
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits_merged")!)).toBeLessThan(1e-7);
  });

  it("regenerates VeRA's shared projections bit for bit from projection_prng_key", () => {
    for (const name of ["llama-vera", "bert-vera"]) {
      const file = SafetensorsFile.open(join(adapter(name), "adapter_model.safetensors"));
      const A = file.load("base_model.vera_A");
      const B = file.load("base_model.vera_B");
      const gen = makeProjections(0, A.shape[0], A.shape[1], B.shape[0]);
      expect(Array.from(gen.A.data as Float32Array)).toEqual(Array.from(A.data as Float32Array));
      expect(Array.from(gen.B.data as Float32Array)).toEqual(Array.from(B.data as Float32Array));
    }
  });
});

describe("training", () => {
  it("one AdamW step reproduces PyTorch's loss and updated LoRA weights", () => {
    const ref = reference("adapter-llama-lora-train-step");
    const p = PeftModel.fromPretrained(model("tiny-llama"), adapter("llama-lora"), {
      isTrainable: true,
    });
    p.train();
    const x = ref.get("input_ids")!;
    const params = p.model.parameters().filter((t) => t.requiresGrad);
    expect(params).toHaveLength(8);
    const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
    const before = p.forward({ inputIds: x, labels: x }).loss!;
    expect(
      Math.abs((before.item() as number) - (ref.get("loss_before")!.item() as number)),
    ).toBeLessThan(1e-5);
    before.backward();
    opt.step();
    const after = p.forward({ inputIds: x, labels: x }).loss!;
    expect(
      Math.abs((after.item() as number) - (ref.get("loss_after")!.item() as number)),
    ).toBeLessThan(1e-5);
    const state = p.adapterStateDict();
    for (const [key, expected] of ref) {
      if (!key.startsWith("base_model.")) continue;
      expect(maxAbsError(state.get(key)!, expected), key).toBeLessThan(1e-5); // measured 3.9e-7
    }
  });

  it("trains only the active adapter; base weights get no gradient", () => {
    const p = getPeftModel(model("tiny-llama"), {
      peftType: "LORA",
      r: 4,
      targetModules: ["q_proj", "v_proj"],
    });
    const [trainable, total] = p.getNbTrainableParameters();
    // Per layer: q has A [4, 64] and B [64, 4], v has A [4, 64] and B [32, 4]; two layers.
    expect(trainable).toBe(2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4));
    // tiny-llama has 106,816 base parameters (the fixture's 110,400 with its r=8 LoRA, minus 3,584).
    expect(total).toBe(106816 + trainable);
    const lines: string[] = [];
    p.printTrainableParameters((l) => lines.push(l));
    expect(lines[0]).toMatch(
      /^trainable params: 1,792 \|\| all params: 108,608 \|\| trainable%: 1\.6500$/,
    );
    const ids = reference("tiny-llama").get("input_ids")!;
    p.forward({ inputIds: ids, labels: ids }).loss!.backward();
    for (const [name, t] of p.model.namedParameters()) {
      if (name.includes("lora_")) expect(t.grad, name).not.toBeNull();
      else expect(t.grad, name).toBeNull();
    }
  });
});

describe("saving and loading", () => {
  it.each(CAUSAL)(
    "%s: savePretrained writes PEFT's files, keys, shapes, dtypes and config keys",
    (name, base) => {
      const p = PeftModel.fromPretrained(model(base), adapter(name));
      const dir = tmp();
      p.savePretrained(dir);
      expect(readdirSync(dir).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
      const ours = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
      const theirs = SafetensorsFile.open(join(adapter(name), "adapter_model.safetensors"));
      // PEFT's metadata, plus the hash that pairs the weights with their config.
      const { [CONFIG_HASH_KEY]: hash, ...rest } = ours.metadata;
      expect(rest).toEqual(theirs.metadata);
      expect(hash).toBe(
        createHash("sha256")
          .update(readFileSync(join(dir, "adapter_config.json")))
          .digest("hex"),
      );
      expect(new Set(ours.keys())).toEqual(new Set(theirs.keys()));
      for (const k of theirs.keys()) {
        expect(ours.entry(k).shape, k).toEqual(theirs.entry(k).shape);
        expect(ours.entry(k).dtype, k).toBe(theirs.entry(k).dtype);
        expect(maxAbsError(ours.load(k), theirs.load(k)), k).toBe(0);
      }
      const cfgOurs = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
      const cfgTheirs = JSON.parse(
        readFileSync(join(adapter(name), "adapter_config.json"), "utf8"),
      );
      expect(Object.keys(cfgOurs).sort()).toEqual(Object.keys(cfgTheirs).sort());
      expect({ ...cfgOurs, target_modules: [...cfgOurs.target_modules].sort() }).toEqual({
        ...cfgTheirs,
        target_modules: [...cfgTheirs.target_modules].sort(),
      });
      // And it reloads to identical outputs.
      const ref = reference(`adapter-${name}`);
      const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
      const again = PeftModel.fromPretrained(model(base), dir);
      expect(maxAbsError(logitsOf(again, inputs), logitsOf(p, inputs))).toBe(0);
    },
  );

  it("VeRA without saved projections regenerates them and gives the same outputs", () => {
    const p = getPeftModel(model("tiny-llama"), {
      peftType: "VERA",
      r: 8,
      targetModules: ["q_proj", "k_proj", "v_proj"],
      saveProjection: false,
      initWeights: false,
    });
    const dir = tmp();
    p.savePretrained(dir);
    const keys = SafetensorsFile.open(join(dir, "adapter_model.safetensors")).keys();
    expect(keys.some((k) => k.includes("vera_A"))).toBe(false);
    const ids = reference("tiny-llama").get("input_ids")!;
    const again = PeftModel.fromPretrained(model("tiny-llama"), dir);
    expect(maxAbsError(logitsOf(again, { inputIds: ids }), logitsOf(p, { inputIds: ids }))).toBe(0);
  });

  it("merge then unmerge restores the base weights within 1e-6", () => {
    for (const [name, base] of CAUSAL) {
      const m = model(base);
      const before = new Map([...m.namedParameters()].map(([k, t]) => [k, t.toFloat32Array()]));
      const p = PeftModel.fromPretrained(m, adapter(name));
      p.mergeAdapter();
      p.unmergeAdapter();
      const unloaded = p.unload();
      for (const [k, t] of unloaded.namedParameters()) {
        const b = before.get(k);
        expect(b, `${name}: ${k}`).toBeDefined();
        const a = t.toFloat32Array();
        let d = 0;
        for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b![i]));
        expect(d, `${name}: ${k}`).toBeLessThan(1e-6);
      }
    }
  });

  it("mergeAndUnload returns a plain model with the merged behaviour", () => {
    const ref = reference("adapter-llama-lora");
    const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
    const plain = PeftModel.fromPretrained(
      model("tiny-llama"),
      adapter("llama-lora"),
    ).mergeAndUnload();
    expect([...plain.namedModules()].some(([n]) => n.includes("lora"))).toBe(false);
    expect(maxAbsError(plain.forward(inputs).logits, ref.get("logits_merged")!)).toBeLessThan(1e-5);
  });
});

describe("several adapters", () => {
  it("adds, switches, disables, saves in subfolders and deletes", () => {
    const ref = reference("adapter-llama-lora");
    const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
    const p = PeftModel.fromPretrained(model("tiny-llama"), adapter("llama-lora"));
    p.loadAdapter(adapter("llama-lora-rslora-all-linear"), "other");
    expect(p.activeAdapter).toBe("default");
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-5);
    p.setAdapter("other");
    expect(
      maxAbsError(
        logitsOf(p, inputs),
        reference("adapter-llama-lora-rslora-all-linear").get("logits")!,
      ),
    ).toBeLessThan(1e-5);
    expect(
      maxAbsError(
        p.disableAdapter(() => logitsOf(p, inputs)),
        ref.get("logits_disabled")!,
      ),
    ).toBeLessThan(1e-5);
    const dir = tmp();
    p.savePretrained(dir);
    expect(readdirSync(dir).sort()).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
      "other",
    ]);
    expect(readdirSync(join(dir, "other")).sort()).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
    ]);
    p.deleteAdapter("other");
    expect(p.activeAdapter).toBe("default");
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-5);
    expect(() => p.deleteAdapter("default")).toThrow(/only adapter/);
    expect(() => p.setAdapter("nope")).toThrow(/no adapter named "nope"/);
  });
});

describe("LoRA variants", () => {
  const ids = () => reference("tiny-llama").get("input_ids")!;

  it("initialises B to zero by default, so the model starts unchanged", () => {
    const base = logitsOf(model("tiny-llama"), { inputIds: ids() });
    for (const init of [true, "gaussian"] as const) {
      const p = getPeftModel(
        model("tiny-llama"),
        new LoraConfig({ r: 4, targetModules: "all-linear", initLoraWeights: init }),
      );
      expect(maxAbsError(logitsOf(p, { inputIds: ids() }), base)).toBe(0);
    }
  });

  it("works on embeddings and merges consistently", () => {
    const p = getPeftModel(model("tiny-llama"), {
      peftType: "LORA",
      r: 4,
      targetModules: ["embed_tokens", "q_proj"],
      initLoraWeights: false,
    });
    const unmerged = logitsOf(p, { inputIds: ids() });
    expect(
      maxAbsError(unmerged, logitsOf(model("tiny-llama"), { inputIds: ids() })),
    ).toBeGreaterThan(1e-3);
    p.mergeAdapter();
    expect(maxAbsError(logitsOf(p, { inputIds: ids() }), unmerged)).toBeLessThan(1e-5);
    const keys = [...p.adapterStateDict().keys()];
    expect(keys).toContain("base_model.model.model.embed_tokens.lora_embedding_A");
    expect(keys).toContain("base_model.model.model.embed_tokens.lora_embedding_B");
  });

  it("honours layersToTransform, excludeModules and rank patterns", () => {
    const p = getPeftModel(model("tiny-llama"), {
      peftType: "LORA",
      r: 4,
      targetModules: ["q_proj", "v_proj"],
      layersToTransform: [1],
      excludeModules: ["v_proj"],
      rankPattern: { q_proj: 2 },
    });
    const keys = [...p.adapterStateDict().keys()];
    expect(keys).toEqual([
      "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
      "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
    ]);
    expect(p.adapterStateDict().get(keys[0])!.shape).toEqual([2, 64]);
  });

  it("accepts a regex target and keeps unknown config keys with a warning", () => {
    const p = getPeftModel(model("tiny-llama"), {
      peftType: "LORA",
      targetModules: ".*layers\\.0\\.mlp\\.(gate|up)_proj",
    });
    expect(p.adapterStateDict().size).toBe(4);
    const dir = tmp();
    cpSync(adapter("llama-lora"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, future_option: 3 }));
    const warnings: string[] = [];
    const q = PeftModel.fromPretrained(model("tiny-llama"), dir, {
      onWarning: (w) => warnings.push(w),
    });
    expect(warnings.join("\n")).toMatch(/future_option/);
    const out = tmp();
    q.savePretrained(out);
    expect(JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")).future_option).toBe(
      3,
    );
  });
});

describe("bad input", () => {
  it("an adapter for another model names the tensor and both shapes", () => {
    expect(() => PeftModel.fromPretrained(model("tiny-gpt2"), adapter("llama-lora"))).toThrow(
      ValueError,
    );
    // Same module names, different sizes: tiny-qwen2 shares tiny-llama's layout; shrink a layer to force a mismatch.
    const dir = tmp();
    cpSync(adapter("llama-lora"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, r: 4 }));
    expect(() => PeftModel.fromPretrained(model("tiny-llama"), dir)).toThrow(ShapeError);
    expect(() => PeftModel.fromPretrained(model("tiny-llama"), dir)).toThrow(
      /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" .* has shape \[8, 64\] but the model expects \[4, 64\]/,
    );
  });

  it("missing files, unknown peft_type and targets that match nothing", () => {
    expect(() => PeftModel.fromPretrained(model("tiny-llama"), tmp())).toThrow(FileNotFoundError);
    const dir = tmp();
    cpSync(join(adapter("llama-lora"), "adapter_config.json"), join(dir, "adapter_config.json"));
    expect(() => PeftModel.fromPretrained(model("tiny-llama"), dir)).toThrow(
      /no adapter_model.safetensors/,
    );
    const other = tmp();
    cpSync(adapter("llama-lora"), other, { recursive: true });
    const json = JSON.parse(readFileSync(join(other, "adapter_config.json"), "utf8"));
    writeFileSync(
      join(other, "adapter_config.json"),
      JSON.stringify({ ...json, peft_type: "FOURIERFT" }),
    );
    expect(() => PeftModel.fromPretrained(model("tiny-llama"), other)).toThrow(FileFormatError);
    expect(() => PeftModel.fromPretrained(model("tiny-llama"), other)).toThrow(
      /peft_type "FOURIERFT" is not supported; supported: LORA, VERA, IA3/,
    );
    expect(() =>
      getPeftModel(model("tiny-llama"), { peftType: "LORA", targetModules: ["qkv_proj"] }),
    ).toThrow(
      /matched no module of the model\. Its layers are: model\.embed_tokens, model\.layers\.0\.self_attn\.q_proj/,
    );
    expect(() =>
      getPeftModel(model("tiny-llama"), { peftType: "LORA", r: 0, targetModules: ["q_proj"] }),
    ).toThrow(/r must be a positive integer/);
    expect(() => getPeftModel(model("tiny-llama"), { peftType: "FOURIERFT" } as never)).toThrow(
      /unknown peftType "FOURIERFT"/,
    );
  });
});

describe("bias modes", () => {
  it('"lora_only" trains and saves the biases of wrapped layers; "all" every bias', () => {
    const qwen = () => AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-qwen2"));
    const only = getPeftModel(qwen(), {
      peftType: "LORA",
      r: 2,
      targetModules: ["q_proj"],
      bias: "lora_only",
    });
    const saved = [...only.adapterStateDict().keys()].filter((k) => k.endsWith(".bias"));
    expect(saved).toEqual([
      "base_model.model.model.layers.0.self_attn.q_proj.bias",
      "base_model.model.model.layers.1.self_attn.q_proj.bias",
    ]);
    const trainable = [...only.model.namedParameters()]
      .filter(([, t]) => t.requiresGrad)
      .map(([n]) => n);
    expect(trainable.filter((n) => n.endsWith("bias"))).toEqual([
      "model.layers.0.self_attn.q_proj.base_layer.bias",
      "model.layers.1.self_attn.q_proj.base_layer.bias",
    ]);
    const all = getPeftModel(qwen(), {
      peftType: "LORA",
      r: 2,
      targetModules: ["q_proj"],
      bias: "all",
    });
    expect([...all.adapterStateDict().keys()].filter((k) => k.endsWith(".bias"))).toHaveLength(6);
    const dir = tmp();
    all.savePretrained(dir);
    const again = PeftModel.fromPretrained(qwen(), dir);
    expect(again.adapterStateDict().size).toBe(all.adapterStateDict().size);
  });
});

describe("PEFT's load semantics", () => {
  // llama-lora saved again with lora_dropout 0.1: in eval mode dropout is the identity, so
  // PEFT's from_pretrained gives exactly the fixture's logits.
  const withDropout = () => {
    const dir = tmp();
    cpSync(adapter("llama-lora"), dir, { recursive: true });
    const path = join(dir, "adapter_config.json");
    const json = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...json, lora_dropout: 0.1 }));
    return dir;
  };
  const ref = reference("adapter-llama-lora");
  const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
  const trainable = (p: PeftModel) => p.model.parameters().filter((t) => t.requiresGrad).length;

  it("fromPretrained is in eval mode with a frozen adapter, so dropout > 0 gives PEFT's logits", () => {
    const p = PeftModel.fromPretrained(model("tiny-llama"), withDropout());
    expect(p.model.training).toBe(false);
    expect([...p.model.namedModules()].every(([, m]) => !m.training)).toBe(true);
    expect(trainable(p)).toBe(0);
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-5);
    // The dropout is real: in train mode the logits move.
    p.train();
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeGreaterThan(1e-3);
  });

  it("fromPretrained with isTrainable gives trainable adapter weights", () => {
    const p = PeftModel.fromPretrained(model("tiny-llama"), withDropout(), { isTrainable: true });
    expect(trainable(p)).toBe(8); // lora_A and lora_B of q_proj and v_proj in 2 layers
  });

  it("loadAdapter defaults to a frozen adapter and eval mode, leaving the active adapter training", () => {
    const p = getPeftModel(model("tiny-llama"), {
      peftType: "LORA",
      r: 4,
      targetModules: ["q_proj"],
    });
    p.train();
    const before = trainable(p);
    expect(before).toBeGreaterThan(0);
    p.loadAdapter(withDropout(), "other");
    expect(p.activeAdapter).toBe("default");
    expect(trainable(p)).toBe(before);
    expect(p.model.training).toBe(false);
    p.setAdapter("other");
    expect(maxAbsError(logitsOf(p, inputs), ref.get("logits")!)).toBeLessThan(1e-5);
  });

  it("records the base model's directory as base_model_name_or_path", () => {
    const base = fixturePath("models/tiny-llama");
    const p = getPeftModel(AutoModelForCausalLM.fromPretrained(base), {
      peftType: "LORA",
      r: 4,
      targetModules: ["q_proj"],
    });
    const dir = tmp();
    p.savePretrained(dir);
    const json = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    expect(json.base_model_name_or_path).toBe(base);
    expect(
      PeftModel.fromPretrained(model("tiny-llama"), dir).peftConfig.get("default")!
        .baseModelNameOrPath,
    ).toBe(base);
  });
});

describe("several VeRA adapters", () => {
  it("must share the projection key and save_projection, as PEFT requires", () => {
    const vera = (fields: object) => ({
      peftType: "VERA" as const,
      r: 4,
      targetModules: ["q_proj"],
      ...fields,
    });
    const p = getPeftModel(model("tiny-llama"), vera({ projectionPrngKey: 0 }));
    p.addAdapter("same", toConfig(vera({ projectionPrngKey: 0 })));
    expect(() => p.addAdapter("other", toConfig(vera({ projectionPrngKey: 7 })))).toThrow(
      /projection_prng_key must be the same for all of them, got 7 but an existing adapter has 0/,
    );
    expect(() => p.addAdapter("other", toConfig(vera({ saveProjection: false })))).toThrow(
      /save_projection must be the same/,
    );
    expect([...p.peftConfig.keys()]).toEqual(["default", "same"]);
  });
});

describe("patterns in adapter_config.json", () => {
  const edited = (fields: object) => {
    const dir = tmp();
    cpSync(adapter("llama-lora"), dir, { recursive: true });
    const path = join(dir, "adapter_config.json");
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), ...fields }));
    return dir;
  };
  it("cannot hang loading, whatever the regex", () => {
    const t0 = performance.now();
    expect(() =>
      PeftModel.fromPretrained(model("tiny-llama"), edited({ target_modules: "(.*)*Z" })),
    ).toThrow(/matched no module/);
    const warnings: string[] = [];
    const p = PeftModel.fromPretrained(
      model("tiny-llama"),
      edited({
        target_modules: "(.*)*q_proj",
        exclude_modules: "(.*)*(.*)*Z",
        rank_pattern: { "(.*)*(.*)*Z": 2 },
      }),
      { onWarning: (w) => warnings.push(w) },
    );
    expect(p.adapterLayers().map((l) => l.path)).toEqual([
      "model.layers.0.self_attn.q_proj",
      "model.layers.1.self_attn.q_proj",
    ]);
    expect(warnings.join()).toMatch(/v_proj/); // the fixture's v_proj tensors are left unused
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});
