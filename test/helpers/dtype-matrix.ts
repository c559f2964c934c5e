import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { FloatDType } from "../../src/backend/dtype.js";
import { AutoModelForCausalLM, type FromPretrainedOptions } from "../../src/models/auto.js";
import type { PeftType } from "../../src/peft/config.js";
import { getPeftModel, PeftModel } from "../../src/peft/peft-model.js";
import { methodFor, PEFT_TYPES } from "../../src/peft/registry.js";
import { promptEncoders } from "../../src/peft/tuners/prompt/virtual-tokens.js";
import { Linear4bit } from "../../src/quant/linear4bit.js";
import { dequantizedWeight } from "../../src/quant/matmul4bit.js";
import { randn } from "../../src/tensor/creation.js";
import { slice } from "../../src/tensor/ops/layout.js";
import { autocast } from "../../src/tensor/state.js";
import { overwrite } from "../../src/tensor/storage-version.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { AdamW } from "../../src/train/optim/adamw.js";
import { fixturePath, maxAbsError, reference } from "./fixtures.js";

/**
 * The whole cross-product, generated: every base (dense float32/bfloat16/float16; NF4 and
 * FP4 with each compute dtype; pre-quantised checkpoints loaded in another dtype; each
 * quant storage) x every registered PEFT method and its variants x precision (none,
 * bfloat16 autocast, float16 autocast) x autocastAdapterDtype. Each case runs an eval
 * forward against a float64 model carrying the same weights, saves and reloads the
 * adapter, trains one step (forward, backward, AdamW), generates in train mode under the
 * same autocast as a training callback would, and merges and unmerges. Nothing may throw,
 * and every loss, gradient and logit is finite and within its dtypes' tolerance.
 */

interface Base {
  name: string;
  dir: string;
  options: FromPretrainedOptions;
  /** A dense checkpoint of the same architecture for the float64 twin, where dir is pre-quantised. */
  dense?: string;
  /** The family's names for the matrix's Llama targets (Phi-3's fused layers). */
  targets?: Record<string, string>;
}

const LLAMA = "models/tiny-llama";
const GEMMA2 = { name: "gemma2", dir: "models/tiny-gemma2" };
const PHI3 = {
  name: "phi3",
  dir: "models/tiny-phi3",
  targets: {
    q_proj: "qkv_proj",
    k_proj: "qkv_proj",
    v_proj: "qkv_proj",
    gate_proj: "gate_up_proj",
  },
};
const q4 = (
  quantType: "nf4" | "fp4",
  computeDtype: FloatDType,
  quantStorage?: "float16" | "float32",
): Base => ({
  name: `${quantType} compute ${computeDtype}${quantStorage ? ` storage ${quantStorage}` : ""}`,
  dir: LLAMA,
  options: {
    quantization: { loadIn4bit: true, quantType, doubleQuant: true, computeDtype, quantStorage },
  },
});

export const BASES: Base[] = [
  ...(["float32", "bfloat16", "float16"] as FloatDType[]).map((dtype) => ({
    name: dtype,
    dir: LLAMA,
    options: { dtype },
  })),
  ...(["nf4", "fp4"] as const).flatMap((t) =>
    (["float32", "bfloat16", "float16"] as FloatDType[]).map((c) => q4(t, c)),
  ),
  q4("nf4", "bfloat16", "float16"),
  q4("fp4", "float32", "float32"),
  // Pre-quantised checkpoints (compute float32, uint8 and bfloat16 storage) with bfloat16 for everything else.
  {
    name: "pre-quantised nf4 as bfloat16",
    dir: "models/tiny-llama-bnb-nf4",
    dense: LLAMA,
    options: { dtype: "bfloat16" },
  },
  {
    name: "pre-quantised nf4 storage bfloat16 as bfloat16",
    dir: "models/tiny-llama-bnb-nf4-qs-bf16",
    dense: LLAMA,
    options: { dtype: "bfloat16" },
  },
  // The families' own paths: Gemma 2's (1 + w) norms, soft-capped attention and windows;
  // Phi-3's fused projections, dense and 4-bit.
  ...[GEMMA2, PHI3].flatMap((family) => [
    { ...family, name: `${family.name} float32`, options: {} },
    {
      ...family,
      name: `${family.name} ${q4("nf4", "bfloat16").name}`,
      options: q4("nf4", "bfloat16").options,
    },
  ]),
];

/** Each method's variants; typed by PeftType, so a newly registered method must add its own. */
const VARIANTS: Record<PeftType, [string, Record<string, unknown>][]> = {
  LORA: [
    ["LoRA", { r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"] }],
    [
      "DoRA",
      { r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"], useDora: true },
    ],
  ],
  VERA: [["VeRA", { r: 8, targetModules: ["q_proj", "v_proj", "down_proj"] }]],
  IA3: [
    [
      "IA3",
      { targetModules: ["k_proj", "v_proj", "down_proj"], feedforwardModules: ["down_proj"] },
    ],
  ],
  LOHA: [["LoHa", { r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "down_proj"] }]],
  LOKR: [
    ["LoKr", { r: 4, targetModules: ["q_proj", "v_proj", "down_proj"] }],
    [
      "LoKr low-rank",
      { r: 1, decomposeBoth: true, targetModules: ["q_proj", "v_proj", "down_proj"] },
    ],
  ],
  OFT: [
    ["OFT", { r: 8, targetModules: ["q_proj", "v_proj", "down_proj"] }],
    ["COFT shared", { r: 6, coft: true, blockShare: true, targetModules: ["q_proj", "gate_proj"] }],
  ],
  BOFT: [
    [
      "BOFT",
      {
        boftBlockSize: 0,
        boftBlockNum: 8,
        boftNButterflyFactor: 2,
        targetModules: ["q_proj", "down_proj"],
      },
    ],
  ],
  LN_TUNING: [["LN tuning", { targetModules: ["input_layernorm", "norm"] }]],
  PROMPT_TUNING: [["prompt tuning", { numVirtualTokens: 3 }]],
  PREFIX_TUNING: [
    ["prefix tuning", { numVirtualTokens: 3 }],
    [
      "prefix tuning projected",
      { numVirtualTokens: 3, prefixProjection: true, encoderHiddenSize: 16 },
    ],
  ],
  P_TUNING: [["P-tuning", { numVirtualTokens: 3, encoderHiddenSize: 16 }]],
  ADALORA: [
    [
      "AdaLoRA",
      {
        initR: 6,
        targetR: 4,
        loraAlpha: 12,
        totalStep: 4,
        targetModules: ["q_proj", "v_proj", "down_proj"],
      },
    ],
  ],
};
const METHODS = PEFT_TYPES.flatMap((type) =>
  VARIANTS[type].map(([name, fields]) => ({ name, config: { peftType: type, ...fields } })),
);
const PRECISIONS: (FloatDType | null)[] = [null, "bfloat16", "float16"];

// Logits of tiny-llama are |x| < 1.1: one bf16 ulp is at most 2^-8, one f16 ulp 2^-11; the
// float32 bound allows for float32 accumulation against the float64 model.
const TOLERANCE: Record<string, number> = { float32: 1e-5, float16: 5e-3, bfloat16: 3e-2 };

const ref = reference("adapter-llama-lora");
const inputs = { inputIds: ref.get("input_ids")!, attentionMask: ref.get("attention_mask")! };
const ids = slice(ref.get("input_ids")!, 0, 0, 1);
const logits = (p: PeftModel) => (p.forward(inputs as never) as { logits: Tensor }).logits;
const finite = (t: Tensor) => t.toFloat32Array().every(Number.isFinite);
/** The method's config with the targets renamed for the base's family. */
function configFor(base: Base, method: (typeof METHODS)[number]): Record<string, unknown> {
  const { targets } = base;
  const config: Record<string, unknown> = method.config;
  const modules = config.targetModules as string[] | undefined;
  if (targets === undefined || modules === undefined) return config;
  const renamed = [...new Set(modules.map((m) => targets[m] ?? m))];
  const feedforward = config.feedforwardModules as string[] | undefined;
  return {
    ...config,
    targetModules: renamed,
    ...(feedforward && { feedforwardModules: feedforward.map((m) => targets[m] ?? m) }),
  };
}
const under = <T>(precision: FloatDType | null, fn: () => T): T =>
  precision === null ? fn() : autocast(precision, fn);

/** The dtypes a model computes or stores in: dense weights, 4-bit compute dtypes. */
function modelDTypes(p: PeftModel): Set<string> {
  const out = new Set<string>();
  for (const t of p.model.parameters()) out.add(t.dtype);
  for (const [, m] of p.model.namedModules()) if (m instanceof Linear4bit) out.add(m.computeDtype);
  return out;
}

/** A float64 model with the tested model's values: base weights (4-bit ones dequantised exactly) and adapter. */
function float64Twin(p: PeftModel, base: Base, method: (typeof METHODS)[number]): PeftModel {
  const dense = AutoModelForCausalLM.fromPretrained(fixturePath(base.dense ?? base.dir), {
    dtype: "float64",
  });
  const state = dense.stateDict();
  const set = (key: string, t: Tensor) =>
    overwrite(state.get(key.replace(".base_layer", ""))!.data, t.data);
  for (const [name, m] of p.model.namedModules()) {
    if (m instanceof Linear4bit)
      set(`${name}.weight`, dequantizedWeight(m.packed, m.state, "float64"));
  }
  for (const [name, t] of p.model.namedParameters())
    if (!t.requiresGrad) set(name, t.to("float64"));
  const twin = getPeftModel(dense, configFor(base, method) as never, {
    autocastAdapterDtype: true,
  });
  // Every trainable tensor by path: the adapter's, and a prompt encoder's head too.
  const mine = new Map(p.model.namedParameters());
  for (const [key, t] of twin.model.namedParameters())
    if (t.requiresGrad) overwrite(t.data, mine.get(key)!.to("float64").data);
  return twin.eval();
}

/** The matrix's cases for these bases (every method, precision and adapter dtype on each). */
export function matrixFor(bases: Base[]): void {
  const scratch = mkdtempSync(join(tmpdir(), "peft-matrix-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  describe.each(bases)("base $name", (base) => {
    const load = () => AutoModelForCausalLM.fromPretrained(fixturePath(base.dir), base.options);

    describe.each(METHODS)("$name", (method) => {
      it.each(PRECISIONS.flatMap((precision) => [true, false].map((a) => [precision, a] as const)))(
        "precision %s, autocastAdapterDtype %s",
        (precision, autocastAdapterDtype) => {
          const options = { autocastAdapterDtype };
          const p = getPeftModel(load(), configFor(base, method) as never, options);
          // Move every trainable tensor off its initial value (LoRA's B and VeRA's λb start at 0).
          let seed = 1;
          for (const t of p.model.parameters().filter((x) => x.requiresGrad)) {
            const noise = randn([...t.shape], { seed: seed++, dtype: "float32" }).mul(0.05);
            overwrite(t.data, t.to("float32").add(noise).to(t.dtype).data);
          }
          const dtypes = modelDTypes(p);
          if (precision !== null) dtypes.add(precision);
          const tol = Math.max(...[...dtypes].map((d) => TOLERANCE[d] ?? 0));

          // Eval forward against the float64 twin.
          p.eval();
          const twin = float64Twin(p, base, method);
          const y = under(precision, () => logits(p));
          expect(finite(y)).toBe(true);
          expect(maxAbsError(y, logits(twin))).toBeLessThan(tol);

          // Save and reload onto a fresh base: the same outputs. A prompt encoder's head is
          // saved as its output, computed outside autocast, while the live head runs under it
          // (PEFT's files have the same property), so that reload differs by the precision's rounding.
          const head = promptEncoders(p.model)?.get("default")?.hasHead ?? false;
          const reloadTol = head && precision !== null ? tol : 1e-6;
          const dir = join(
            scratch,
            `${base.name}-${method.name}-${precision}-${autocastAdapterDtype}`,
          );
          p.savePretrained(dir);
          const back = PeftModel.fromPretrained(load(), dir, options);
          expect(
            maxAbsError(
              under(precision, () => logits(back)),
              y,
            ),
          ).toBeLessThan(reloadTol);
          for (const [k, t] of back.adapterStateDict())
            expect(t.dtype, k).toBe(p.adapterStateDict().get(k)!.dtype);

          // One training step under the precision's autocast.
          p.train();
          const out = under(
            precision,
            () => p.forward({ inputIds: ids, labels: ids } as never) as { loss: Tensor },
          );
          const loss = out.loss.item() as number;
          expect(Number.isFinite(loss)).toBe(true);
          const twinLoss = (
            twin.forward({ inputIds: ids, labels: ids } as never) as { loss: Tensor }
          ).loss;
          expect(Math.abs(loss - (twinLoss.item() as number))).toBeLessThan(Math.max(tol, 1e-5));
          out.loss.backward();
          const params = p.model.parameters().filter((t) => t.requiresGrad);
          expect(params.length).toBeGreaterThan(0);
          const before = params.map((t) => t.toFloat32Array().slice());
          for (const t of params) {
            expect(t.grad?.dtype).toBe(t.dtype);
            expect(finite(t.grad!)).toBe(true);
          }
          // 1e-2: a bfloat16 adapter value near 1 (IA3's scales) moves only by more than half its ulp (2^-8).
          new AdamW(params, { lr: 1e-2 }).step();
          expect(params.every(finite)).toBe(true);
          expect(params.some((t, i) => t.toFloat32Array().some((v, j) => v !== before[i][j]))).toBe(
            true,
          );

          // generate() from a training callback: train mode, same autocast.
          const gen = under(precision, () => p.generate(ids, { maxNewTokens: 2 }));
          expect(gen.shape).toEqual([1, ids.shape[1] + 2]);
          expect(p.model.training).toBe(true);

          // Prompt learning has no weights to merge into, as in PEFT.
          if (methodFor(p.peftConfig.get("default")!).tuner.virtualTokens !== undefined) {
            expect(() => p.mergeAdapter()).toThrow(/cannot be merged/);
            return;
          }
          // Merge and unmerge. Merging into 4-bit weights requantises them (a second rounding as
          // large as the first: up to 0.2 in the logits for DoRA, which rescales every weight).
          p.eval();
          const unmerged = under(precision, () => logits(p));
          p.mergeAdapter();
          const mergeTol = dtypes.has("float32") && dtypes.size === 1 ? 1e-5 : 2 * tol;
          const quantised = modelHas4bit(p);
          const merged = under(precision, () => logits(p));
          expect(finite(merged)).toBe(true);
          expect(maxAbsError(merged, unmerged)).toBeLessThan(quantised ? 0.3 : mergeTol);
          p.unmergeAdapter();
          expect(
            maxAbsError(
              under(precision, () => logits(p)),
              unmerged,
            ),
          ).toBeLessThan(quantised ? 0.5 : mergeTol);
        },
      );
    });
  });
}

function modelHas4bit(p: PeftModel): boolean {
  return [...p.model.namedModules()].some(([, m]) => m instanceof Linear4bit);
}

/** The matrix as a whole: every registered method, and the size it should have. */
export function matrixCoverage(): void {
  describe("the matrix", () => {
    it("covers every registered method", () => {
      expect(new Set(METHODS.map((m) => m.config.peftType))).toEqual(new Set(PEFT_TYPES));
      expect(BASES.length * PRECISIONS.length * 2).toBe(102);
      expect(METHODS.length).toBeGreaterThan(PEFT_TYPES.length);
    });
  });
}
