import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../test/helpers/fixtures.js";
import { readJsonFile } from "../io/read-file.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { saveModelDirectory } from "../models/save.js";
import { getPeftModel } from "../peft/peft-model.js";
import type { LoraLayer } from "../peft/tuners/lora/layer.js";
import { Linear4bit, type QuantStorage } from "./linear4bit.js";

/**
 * bitsandbytes' quant_storage: the packed 4-bit bytes stored as another dtype's elements
 * ([bytes / itemsize, 1]). `tiny-llama-bnb-nf4-qs-bf16` is `tiny-llama-bnb-nf4` with every
 * packed weight stored as bfloat16 (same bytes, same reference logits).
 */
const ref = reference("tiny-llama-bnb-nf4-qs-bf16");
const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
const QS_BF16 = fixturePath("models/tiny-llama-bnb-nf4-qs-bf16");
const layers = (m: ReturnType<typeof AutoModelForCausalLM.fromPretrained>) =>
  [...m.namedModules()].filter((e): e is [string, Linear4bit] => e[1] instanceof Linear4bit);

describe("quant storage", () => {
  it("loads a checkpoint whose packed bytes are stored as bfloat16 and reproduces its logits", () => {
    const m = AutoModelForCausalLM.fromPretrained(QS_BF16);
    const u8 = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama-bnb-nf4"));
    expect(layers(m).length).toBe(14);
    for (const [name, l] of layers(m)) {
      expect(l.quantStorage, name).toBe("bfloat16");
      expect(
        Buffer.from(l.packed).equals(Buffer.from((u8.getModule(name) as Linear4bit).packed)),
      ).toBe(true);
    }
    expect(maxAbsError(m.forward(inputs).logits, ref.get("logits")!)).toBeLessThan(1e-5);
  });

  it("re-saves that checkpoint with every tensor's dtype, shape and bytes unchanged", () => {
    const out = mkdtempSync(join(tmpdir(), "peft-qs-"));
    saveModelDirectory(AutoModelForCausalLM.fromPretrained(QS_BF16), QS_BF16, out);
    const a = SafetensorsFile.open(join(QS_BF16, "model.safetensors"));
    const b = SafetensorsFile.open(join(out, "model.safetensors"));
    expect(new Set(b.keys())).toEqual(new Set(a.keys()));
    for (const k of a.keys()) {
      expect(b.entry(k).dtype, k).toBe(a.entry(k).dtype);
      expect(b.entry(k).shape, k).toEqual(a.entry(k).shape);
      expect(Buffer.from(b.load(k).data.buffer).equals(Buffer.from(a.load(k).data.buffer)), k).toBe(
        true,
      );
    }
    a.close();
    b.close();
    // Same tensors, same order and header: the whole file is Python's bytes.
    expect(
      readFileSync(join(out, "model.safetensors")).equals(
        readFileSync(join(QS_BF16, "model.safetensors")),
      ),
    ).toBe(true);
    const q = (
      readJsonFile(join(out, "config.json")) as { quantization_config: Record<string, unknown> }
    ).quantization_config;
    expect(q.bnb_4bit_quant_storage).toBe("bfloat16");
  });

  it.each(["uint8", "bfloat16", "float16", "float32"] as QuantStorage[])(
    "quantises while loading with quantStorage %s and stores [bytes / itemsize, 1] of it",
    (quantStorage) => {
      const load = (dir: string) =>
        AutoModelForCausalLM.fromPretrained(dir, {
          quantization: { loadIn4bit: true, quantType: "nf4", doubleQuant: true, quantStorage },
        });
      const m = load(fixturePath("models/tiny-llama"));
      const out = mkdtempSync(join(tmpdir(), "peft-qs-"));
      saveModelDirectory(m, fixturePath("models/tiny-llama"), out);
      const file = SafetensorsFile.open(join(out, "model.safetensors"));
      const itemsize = { uint8: 1, bfloat16: 2, float16: 2, float32: 4 }[quantStorage];
      const e = file.entry("model.layers.0.mlp.down_proj.weight");
      expect(e.dtype).toBe(
        { uint8: "U8", bfloat16: "BF16", float16: "F16", float32: "F32" }[quantStorage],
      );
      expect(e.shape).toEqual([(64 * 128) / 2 / itemsize, 1]);
      file.close();
      const back = AutoModelForCausalLM.fromPretrained(out);
      for (const [name, l] of layers(back)) {
        expect(l.quantStorage).toBe(quantStorage);
        expect(
          Buffer.from(l.packed).equals(Buffer.from((m.getModule(name) as Linear4bit).packed)),
        ).toBe(true);
      }
      expect(maxAbsError(back.forward(inputs).logits, ref.get("logits")!)).toBeLessThan(1e-5);
    },
  );

  it("rejects an unknown storage dtype with the list of known ones", () => {
    expect(() =>
      AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama"), {
        quantization: { loadIn4bit: true, quantStorage: "int8" as QuantStorage },
      }),
    ).toThrow(/quantStorage must be one of uint8, bfloat16, float16, float32, got "int8"/);
  });

  it("warns when options contradict a pre-quantised checkpoint, and uses the checkpoint's", () => {
    const warnings: string[] = [];
    const m = AutoModelForCausalLM.fromPretrained(QS_BF16, {
      quantization: { loadIn4bit: true, quantType: "fp4", computeDtype: "bfloat16" },
      onWarning: (w) => warnings.push(w),
    });
    expect(warnings.join("\n")).toMatch(/quantType: asked "fp4", the checkpoint has "nf4"/);
    expect(warnings.join("\n")).toMatch(
      /computeDtype: asked "bfloat16", the checkpoint has "float32"/,
    );
    expect(layers(m)[0][1].state.quantType).toBe("nf4");
    const quiet: string[] = [];
    AutoModelForCausalLM.fromPretrained(QS_BF16, {
      quantization: { loadIn4bit: true, quantType: "nf4" },
      onWarning: (w) => quiet.push(w),
    });
    expect(quiet).toEqual([]);
  });
});

describe("adapter dtype on 4-bit bases (PEFT 0.13.2)", () => {
  // PEFT moves adapters to the base weight's dtype when it is a float, then (with
  // autocast_adapter_dtype) widens 16-bit adapters to float32. uint8 storage keeps them float32.
  const cases: [QuantStorage, boolean, string][] = [
    ["uint8", true, "float32"],
    ["uint8", false, "float32"],
    ["bfloat16", true, "float32"],
    ["bfloat16", false, "bfloat16"],
    ["float16", false, "float16"],
    ["float32", false, "float32"],
  ];
  it.each(cases)(
    "storage %s, autocastAdapterDtype %s: adapters in %s",
    (quantStorage, autocastAdapterDtype, want) => {
      const m = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama"), {
        quantization: { loadIn4bit: true, computeDtype: "bfloat16", quantStorage },
      });
      const p = getPeftModel(
        m,
        { peftType: "LORA", r: 4, targetModules: ["q_proj"] },
        { autocastAdapterDtype },
      );
      const layer = p.model.getModule("model.layers.0.self_attn.q_proj") as LoraLayer;
      expect(layer.adapterDType("default")).toBe(want);
      for (const t of layer.adapterState("default").values()) expect(t.dtype).toBe(want);
    },
  );
});
