import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../test/helpers/fixtures.js";
import { FileFormatError, ShapeError } from "../errors.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { Tensor } from "../tensor/tensor.js";
import { Linear4bit } from "./linear4bit.js";

const ref = reference("tiny-llama-bnb-nf4");
const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };

describe("4-bit models", () => {
  it("load a pre-quantised bitsandbytes checkpoint and reproduce its reference logits", () => {
    const m = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama-bnb-nf4"));
    const q = m.getModule("model.layers.0.self_attn.k_proj") as Linear4bit;
    expect(q).toBeInstanceOf(Linear4bit);
    expect(q.weightShape).toEqual([32, 64]); // the real shape, not the packed [1024, 1]
    expect(m.getModule("lm_head")).not.toBeInstanceOf(Linear4bit);
    expect(maxAbsError(m.forward(inputs).logits, ref.get("logits")!)).toBeLessThan(1e-5); // measured 1.8e-7
  });

  it("quantise while loading exactly as bitsandbytes did for that checkpoint", () => {
    const m = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama"), {
      quantization: { loadIn4bit: true, quantType: "nf4", doubleQuant: true },
    });
    const pre = AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama-bnb-nf4"));
    for (const [name, l] of m.namedModules()) {
      if (!(l instanceof Linear4bit)) continue;
      const other = pre.getModule(name) as Linear4bit;
      expect(Array.from(l.packed), name).toEqual(Array.from(other.packed));
      expect(Array.from(l.state.nested!.codes), name).toEqual(
        Array.from(other.state.nested!.codes),
      );
    }
    expect(maxAbsError(m.forward(inputs).logits, ref.get("logits")!)).toBeLessThan(1e-5);
  });

  it("reject quant states that disagree with their bytes, unknown types and corrupt JSON", () => {
    const corrupt = (edit: (t: Map<string, Tensor>) => void): string => {
      const dir = mkdtempSync(join(tmpdir(), "peft-4bit-"));
      cpSync(fixturePath("models/tiny-llama-bnb-nf4"), dir, { recursive: true });
      const file = SafetensorsFile.open(join(dir, "model.safetensors"));
      const tensors = file.loadAll();
      file.close();
      edit(tensors);
      saveSafetensors(join(dir, "model.safetensors"), tensors);
      return dir;
    };
    const blobKey = "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4";
    const setBlob = (t: Map<string, Tensor>, text: string) => {
      const bytes = new TextEncoder().encode(text);
      t.set(blobKey, new Tensor(bytes, [bytes.length], "uint8"));
    };
    const blob = () =>
      JSON.parse(
        new TextDecoder().decode(
          SafetensorsFile.open(
            join(fixturePath("models/tiny-llama-bnb-nf4"), "model.safetensors"),
          ).load(blobKey).data as Uint8Array,
        ),
      );
    const load = (dir: string) => () => AutoModelForCausalLM.fromPretrained(dir);
    expect(load(corrupt((t) => setBlob(t, "{not json")))).toThrow(
      /the quant state JSON is corrupt/,
    );
    expect(
      load(corrupt((t) => setBlob(t, JSON.stringify({ ...blob(), quant_type: "int4" })))),
    ).toThrow(/unknown quant_type "int4"/);
    expect(
      load(corrupt((t) => setBlob(t, JSON.stringify({ ...blob(), shape: [32, 128] })))),
    ).toThrow(ShapeError);
    expect(
      load(corrupt((t) => setBlob(t, JSON.stringify({ ...blob(), shape: [64, 128] })))),
    ).toThrow(/needs 4096 packed bytes, the weight holds 2048 bytes/);
    expect(load(corrupt((t) => setBlob(t, JSON.stringify({ ...blob(), blocksize: 32 }))))).toThrow(
      /blocksize 32 over 4096 values gives 128 blocks, but absmax has 64/,
    );
    expect(load(corrupt((t) => setBlob(t, JSON.stringify({ ...blob(), blocksize: 32 }))))).toThrow(
      FileFormatError,
    );
  });
});

describe("the 4-bit matmul", () => {
  it("equals a dense matmul with the dequantised weight, and its input gradient passes a float64 check", async () => {
    const { gradcheck, param } = await import("../../test/helpers/gradcheck.js");
    const { linear } = await import("../tensor/ops/matmul.js");
    const { linear4bit } = await import("./matmul4bit.js");
    const w = param([300, 40], 1).detach().to("float32");
    const layer = Linear4bit.fromWeight(w, param([300], 2).detach().to("float32"), {
      quantType: "nf4",
    });
    const layer64 = new Linear4bit(40, 300, layer.packed, layer.state, {
      bias: layer.bias,
      computeDtype: "float64",
    });
    const x = param([3, 2, 40], 3);
    const dense = linear(x, layer64.weight, layer64.bias!.to("float64"));
    expect(maxAbsError(layer64.forward(x), dense)).toBeLessThan(1e-12);
    gradcheck((t) => layer64.forward(t), [param([2, 40], 4)]);
    // Split into chunks of 100 rows (at most 4096 weight elements each): the same values
    // from several dequantised pieces, and the gradient summed over them.
    const chunked = (t: Tensor) =>
      linear4bit(t, layer.packed, layer.state, "float64", layer64.bias, "chunked", 4096);
    expect(maxAbsError(chunked(x), dense)).toBeLessThan(1e-12);
    gradcheck(chunked, [param([2, 40], 4)]);
  });
});

describe("the 4-bit product of a few rows (decoding)", () => {
  // Unit roundoff of each dtype: the result is rounded once, so it may be off by half an
  // ulp of itself, plus float32 sums over k terms.
  const roundoff = { float32: 2 ** -24, bfloat16: 2 ** -8, float16: 2 ** -11 } as const;

  it.each([
    [1, 2048, 512],
    [3, 64, 96],
    [8, 256, 40],
    // Sizes the kernel does not take (k not a multiple of 32, more than 8 rows) fall back.
    [2, 48, 30],
    [9, 64, 16],
  ])(
    "m=%i, k=%i, n=%i equals the product with the dequantised weight in every dtype",
    async (m, k, n) => {
      const { getBackend } = await import("../backend/registry.js");
      const { linear } = await import("../tensor/ops/matmul.js");
      const { randn } = await import("../tensor/creation.js");
      expect(getBackend().linear4bitRows !== undefined).toBe(getBackend().name === "native");
      for (const dtype of ["float32", "bfloat16", "float16"] as const) {
        const layer = Linear4bit.fromWeight(randn([n, k], { seed: 1 }).mul(0.05), null, {
          quantType: "nf4",
          doubleQuant: true,
          computeDtype: dtype,
        });
        const x = randn([m, k], { seed: 2 }).to(dtype);
        const y = layer.forward(x);
        expect(y.dtype).toBe(dtype);
        // The weight in the compute dtype, as the dequantising path holds it, in float64.
        const w = layer.weight.to("float64");
        const exact = linear(x.to("float64"), w).toFlatNumbers();
        const bound = linear(x.to("float64").abs(), w.abs()).toFlatNumbers();
        const got = y.to("float64").toFlatNumbers();
        for (let i = 0; i < exact.length; i++) {
          const allowed = roundoff[dtype] * Math.abs(exact[i]) + k * 2 ** -24 * bound[i] + 1e-30;
          expect(Math.abs(got[i] - exact[i]), `${dtype} element ${i}`).toBeLessThanOrEqual(allowed);
        }
      }
    },
  );
});

describe("saving 4-bit models", () => {
  it("writes bitsandbytes' layout: re-saving a pre-quantised checkpoint reproduces every tensor's bytes", async () => {
    const { saveModelDirectory } = await import("../models/save.js");
    const { readJsonFile } = await import("../io/read-file.js");
    const src = fixturePath("models/tiny-llama-bnb-nf4");
    const out = mkdtempSync(join(tmpdir(), "peft-4bit-save-"));
    saveModelDirectory(AutoModelForCausalLM.fromPretrained(src), src, out);
    const a = SafetensorsFile.open(join(src, "model.safetensors"));
    const b = SafetensorsFile.open(join(out, "model.safetensors"));
    expect(new Set(b.keys())).toEqual(new Set(a.keys()));
    for (const k of a.keys()) {
      expect(b.entry(k).dtype, k).toBe(a.entry(k).dtype);
      expect(Buffer.from(b.load(k).data.buffer).equals(Buffer.from(a.load(k).data.buffer)), k).toBe(
        true,
      );
    }
    const cfg = readJsonFile(join(out, "config.json")) as {
      quantization_config: Record<string, unknown>;
    };
    expect(cfg.quantization_config.bnb_4bit_quant_type).toBe("nf4");
    expect(cfg.quantization_config.bnb_4bit_use_double_quant).toBe(true);
    expect(
      maxAbsError(
        AutoModelForCausalLM.fromPretrained(out).forward(inputs).logits,
        ref.get("logits")!,
      ),
    ).toBeLessThan(1e-5);
  });
});

describe("QLoRA merging", () => {
  it("mergeAndUnload can return a 16-bit model merged in full precision", async () => {
    const { PeftModel } = await import("../peft/peft-model.js");
    const { Linear } = await import("../nn/layers.js");
    const load = () =>
      PeftModel.fromPretrained(
        AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama-bnb-nf4")),
        fixturePath("adapters/llama-lora"),
      );
    const p = load();
    const unmerged = p.forward(inputs).logits;
    const dense = p.mergeAndUnload({ dequantize: "float32" });
    expect(dense.getModule("model.layers.0.self_attn.q_proj")).toBeInstanceOf(Linear);
    expect(maxAbsError(dense.forward(inputs).logits, unmerged)).toBeLessThan(2e-6);
    const bf = load().mergeAndUnload({ dequantize: "bfloat16" });
    expect(
      (bf.getModule("model.layers.0.self_attn.q_proj") as InstanceType<typeof Linear>).weight.dtype,
    ).toBe("bfloat16");
  });
});
