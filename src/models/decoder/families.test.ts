import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath, maxAbsError, reference } from "../../../test/helpers/fixtures.js";
import { expectLeftPaddingIsInvisible } from "../../../test/helpers/left-padding.js";
import { FileFormatError } from "../../errors.js";
import { ConfigReader } from "../../io/config.js";
import { concat, slice } from "../../tensor/ops/layout.js";
import { noGrad } from "../../tensor/state.js";
import { overwrite } from "../../tensor/storage-version.js";
import { Tensor } from "../../tensor/tensor.js";
import { AutoModelForCausalLM } from "../auto.js";
import type { DecoderConfig } from "./config.js";
import { DecoderForCausalLM } from "./model.js";
import { type RopeConfig, readRope, ropeFrequencies, rotaryTables } from "./rope.js";

const FAMILIES = [
  "tiny-llama3",
  "tiny-gemma",
  "tiny-gemma2",
  "tiny-phi3",
  "tiny-phi3-longrope",
  "tiny-mistral-sw",
];
const load = (name: string, dtype?: "bfloat16") =>
  AutoModelForCausalLM.fromPretrained(fixturePath(`models/${name}`), {
    dtype,
  }) as DecoderForCausalLM;

/** max |a - b| over the positions whose attention_mask is 1. */
function maskedError(a: Tensor, b: Tensor, mask: Tensor): number {
  const m = mask.toFlatNumbers();
  return maxAbsError(a, b, (row) => m[row] === 1);
}

describe("every family's logits match transformers 4.46 (float32, tolerance 1e-5)", () => {
  // Measured: 1.8e-7 to 3.3e-7 (the fixtures' float64 gap is 1.8e-7 to 3.9e-7). The README's
  // table lists what each feature moves the logits by: 1e-3 to 1.5 for all but the GELU variant.
  it.each(FAMILIES)("%s", (name) => {
    const ref = reference(name);
    const mask = ref.get("attention_mask")!;
    const { logits } = load(name).forward({ inputIds: ref.get("input_ids")!, attentionMask: mask });
    expect(logits.shape).toEqual([2, 16, 256]);
    expect(maskedError(logits, ref.get("logits")!, mask)).toBeLessThan(1e-5);
  });

  it("tiny-phi3-longrope takes the short factors up to original_max_position_embeddings", () => {
    const ref = reference("tiny-phi3-longrope");
    const ids = slice(ref.get("input_ids")!, 1, 0, 8);
    const mask = slice(ref.get("attention_mask")!, 1, 0, 8);
    const { logits } = load("tiny-phi3-longrope").forward({ inputIds: ids, attentionMask: mask });
    // Measured 2.1e-7; the long factors here would move them by 2.7e-3.
    expect(maskedError(logits, ref.get("logits_prefix")!, mask)).toBeLessThan(1e-5);
  });
});

describe("generation", () => {
  it.each(FAMILIES)("%s: greedy generated_ids equal transformers' (KV cache on)", (name) => {
    const ref = reference(name);
    const out = load(name).generate(slice(ref.get("input_ids")!, 0, 0, 1), { maxNewTokens: 8 });
    expect(out.toArray()).toEqual(ref.get("generated_ids")!.toArray());
  });

  it.each(["tiny-mistral-sw", "tiny-gemma2"])(
    "%s: far past the window, cached steps give the tokens of full forwards",
    (name) => {
      const m = load(name);
      const prompt = slice(reference(name).get("input_ids")!, 0, 0, 1);
      const cached = m.generate(prompt, { maxNewTokens: 12 }).toArray() as number[][];
      // Without a cache: the whole sequence again at each step, then argmax of the last row.
      let ids = prompt;
      noGrad(() => {
        for (let s = 0; s < 12; s++) {
          const { logits } = m.forward({ inputIds: ids });
          const last = slice(logits, 1, -1).toFloat32Array();
          const next = last.indexOf(Math.max(...last));
          ids = concat([ids, Tensor.from([[next]]).to("int64")], 1);
        }
      });
      expect(ids.toFlatNumbers()).toEqual(cached[0]);
    },
  );

  it.each(["tiny-llama3", "tiny-gemma", "tiny-phi3-longrope"])(
    "%s: a left-padded row gets the tokens of the row alone",
    (name) =>
      expectLeftPaddingIsInvisible(
        load(name),
        reference(name).get("input_ids")!.toArray() as number[][],
      ),
  );

  it("reads generation_config.json, Gemma 2's cache_implementation included", () => {
    expect(load("tiny-gemma2").generationConfig).toMatchObject({ bosTokenId: 1, eosTokenId: 2 });
  });
});

describe("bfloat16", () => {
  // Every op rounds to 8 mantissa bits through 2 layers; logits are |x| < 1.6, where a bf16
  // ulp is 2^-7 at most.
  it.each(FAMILIES)("%s runs in bfloat16 within bf16 rounding of the reference", (name) => {
    const ref = reference(name);
    const mask = ref.get("attention_mask")!;
    const m = load(name, "bfloat16");
    const { logits } = m.forward({ inputIds: ref.get("input_ids")!, attentionMask: mask });
    expect(logits.dtype).toBe("bfloat16");
    const err = maskedError(logits, ref.get("logits")!, mask);
    expect(err).toBeLessThan(3e-2);
    expect(err).toBeGreaterThan(0);
    expect(m.generate(slice(ref.get("input_ids")!, 0, 0, 1), { maxNewTokens: 3 }).shape).toEqual([
      1, 19,
    ]);
  });
});

describe("rotary scaling", () => {
  const rope = (scaling: object, extra: object = {}, dim = 16, maxPositions = 128, theta = 10000) =>
    readRope(
      new ConfigReader("config.json", { rope_scaling: scaling, ...extra }),
      dim,
      maxPositions,
      theta,
    );
  const plain = (dim = 16, theta = 10000): RopeConfig => ({
    theta,
    dim,
    scaling: { type: "default" },
  });

  it("llama3 gives the README's frequencies in all three bands", () => {
    const cfg = JSON.parse(readFileSync(fixturePath("models/tiny-llama3/config.json"), "utf8"));
    const r = readRope(new ConfigReader("config.json", cfg), 16, 128, 500000);
    const { invFreq, attentionFactor } = ropeFrequencies(r, 16);
    const expected = [
      1, 0.079403, 0.00470075, 0.000911583, 0.000176777, 3.4281e-5, 6.64787e-6, 1.28917e-6,
    ];
    invFreq.forEach((x, i) => expect(Math.abs(x / expected[i] - 1)).toBeLessThan(2e-5));
    expect(attentionFactor).toBe(1);
  });

  it("linear divides every frequency by the factor", () => {
    const base = ropeFrequencies(plain(), 10).invFreq;
    const lin = ropeFrequencies(rope({ rope_type: "linear", factor: 4 }), 10).invFreq;
    lin.forEach((x, i) => expect(x).toBeCloseTo(base[i] / 4, 12));
  });

  it("dynamic NTK keeps the base up to max_position_embeddings and raises it beyond", () => {
    const r = rope({ type: "dynamic", factor: 2 });
    const base = ropeFrequencies(plain(), 10).invFreq;
    expect(Array.from(ropeFrequencies(r, 128).invFreq)).toEqual(Array.from(base));
    // At 256 positions: base · (2·256/128 − 1)^(16/14), so each frequency i is lower.
    const grown = 10000 * 3 ** (16 / 14);
    const longer = ropeFrequencies(r, 256).invFreq;
    longer.forEach((x, i) => expect(x / grown ** (-(2 * i) / 16)).toBeCloseTo(1, 5));
  });

  it("yarn keeps the fast dimensions, interpolates the slow ones and scales cos and sin", () => {
    const r = rope({ type: "yarn", factor: 4 }, {}, 64, 4096);
    const base = ropeFrequencies(plain(64), 1).invFreq;
    const { invFreq, attentionFactor } = ropeFrequencies(r, 1);
    expect(attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    // beta_fast 32 turns at dim 64·ln(4096/(32·2π))/(2·ln 10000) = 10.47 (floor 10), beta_slow 1
    // at 22.5 (ceil 23): the ramp runs from 10 to 23.
    for (let i = 0; i <= 10; i++) expect(invFreq[i]).toBeCloseTo(base[i], 9);
    for (let i = 23; i < 32; i++) expect(invFreq[i] / (base[i] / 4)).toBeCloseTo(1, 5);
    for (let i = 11; i < 23; i++) {
      expect(invFreq[i]).toBeLessThan(base[i]);
      expect(invFreq[i]).toBeGreaterThan(base[i] / 4);
    }
    const { cos } = rotaryTables(Tensor.from([0]), r);
    expect(cos.toFloat32Array()[0]).toBeCloseTo(attentionFactor, 6);
  });

  it("an unknown type or malformed fields get a typed error naming them", () => {
    expect(() => rope({ rope_type: "ntk-by-parts" })).toThrow(
      /rope_scaling type "ntk-by-parts" is not supported/,
    );
    expect(() => rope({ type: "linear" })).toThrow(/"linear" needs a number "factor"/);
    expect(() =>
      rope(
        { type: "longrope", short_factor: [1], long_factor: [1] },
        { original_max_position_embeddings: 8 },
      ),
    ).toThrow(/"short_factor" as 8 numbers/);
    expect(() => rope("linear" as never)).toThrow(FileFormatError);
  });
});

describe("configuration", () => {
  it("Gemma 2 windows the even layers and caps scores and logits; Phi-3 fuses its projections", () => {
    const g = load("tiny-gemma2").config;
    expect(g.slidingWindows).toEqual([8, null]);
    expect([g.attnLogitSoftcap, g.finalLogitSoftcap, g.attentionScale]).toEqual([0.05, 1, 0.25]);
    expect(g.normPlusOne && g.scaleEmbeddings && g.sandwichNorms).toBe(true);
    const p = load("tiny-phi3");
    expect(p.config.fusedProjections).toBe(true);
    expect(
      Object.keys(Object.fromEntries(p.namedModules()))
        .filter((k) => k.startsWith("model.layers.0."))
        .sort(),
    ).toEqual([
      "model.layers.0.input_layernorm",
      "model.layers.0.mlp",
      "model.layers.0.mlp.down_proj",
      "model.layers.0.mlp.gate_up_proj",
      "model.layers.0.post_attention_layernorm",
      "model.layers.0.self_attn",
      "model.layers.0.self_attn.o_proj",
      "model.layers.0.self_attn.qkv_proj",
    ]);
    expect(load("tiny-mistral-sw").config.slidingWindows).toEqual([6, 6]);
  });

  it("refuses decoder dropout it does not implement", () => {
    const dir = mkdtempSync(join(tmpdir(), "peft-phi3-"));
    try {
      cpSync(fixturePath("models/tiny-phi3"), dir, { recursive: true });
      const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, resid_pdrop: 0.1 }));
      expect(() => AutoModelForCausalLM.fromPretrained(dir)).toThrow(
        /field "resid_pdrop" = 0.1 is not supported: dropout inside the decoder/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("switches ahead of their families (Qwen3, Gemma 3)", () => {
  const ref = reference("tiny-gemma2");
  const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
  /** tiny-gemma2's weights in a decoder with some switches changed. */
  const variant = (change: Partial<DecoderConfig>) => {
    const m = load("tiny-gemma2");
    const v = new DecoderForCausalLM({ ...m.config, ...change });
    const into = v.stateDict();
    for (const [k, t] of m.stateDict()) overwrite(into.get(k)!.data, t.data);
    return v.eval();
  };

  it("a local rotary embedding applies to the sliding layers only", () => {
    const same = variant({ localRope: load("tiny-gemma2").config.rope });
    expect(maxAbsError(same.forward(inputs).logits, ref.get("logits")!)).toBeLessThan(1e-5);
    const rope = { ...same.config.rope, theta: 1e6 };
    const local = variant({ localRope: rope }).forward(inputs).logits;
    const global = variant({ rope }).forward(inputs).logits;
    const all = variant({ rope, localRope: rope }).forward(inputs).logits;
    // Without a local one, every layer takes the global tables; with one, the sliding layer
    // takes its own.
    expect(maxAbsError(global, all)).toBe(0);
    expect(maxAbsError(global, ref.get("logits")!)).toBeGreaterThan(1e-4);
    expect(maxAbsError(local, global)).toBeGreaterThan(1e-4);
    expect(maxAbsError(local, ref.get("logits")!)).toBeGreaterThan(1e-4);
  });

  it("q/k norms make attention blind to the scale of q_proj and k_proj", () => {
    const m = variant({ qkNorm: true });
    const state = m.stateDict();
    expect(state.get("model.layers.0.self_attn.q_norm.weight")!.shape).toEqual([24]);
    const before = m.forward(inputs).logits;
    for (const [k, t] of state)
      if (/self_attn\.[qk]_proj\.weight$/.test(k)) overwrite(t.data, t.mul(7).data);
    // RMS normalisation per head undoes the factor (up to eps); without the norms it would not.
    expect(maxAbsError(m.forward(inputs).logits, before)).toBeLessThan(1e-4);
    expect(maxAbsError(before, ref.get("logits")!)).toBeGreaterThan(1e-3);
  });
});
