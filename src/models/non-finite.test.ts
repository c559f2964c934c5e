import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { saveSafetensors } from "../io/safetensors/writer.js";
import { Tensor } from "../tensor/tensor.js";
import { AutoModelForCausalLM } from "./auto.js";
import { countNonFinite } from "./non-finite.js";

const FIXTURES = new URL("../../test/fixtures/models/", import.meta.url).pathname;

/** tiny-llama with some elements of one weight replaced. */
function poisoned(values: Record<number, number>, name = "model.layers.0.self_attn.q_proj.weight") {
  const dir = mkdtempSync(join(tmpdir(), "peft-nonfinite-"));
  cpSync(join(FIXTURES, "tiny-llama"), dir, { recursive: true });
  const w = SafetensorsFile.open(join(dir, "model.safetensors")).loadAll();
  const t = w.get(name)!;
  const data = Float32Array.from(t.data as Float32Array);
  for (const [i, v] of Object.entries(values)) data[Number(i)] = v;
  w.set(name, new Tensor(data, t.shape, "float32"));
  saveSafetensors(join(dir, "model.safetensors"), w, { format: "pt" });
  return dir;
}

function warnings(
  dir: string,
  options: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {},
) {
  const got: string[] = [];
  AutoModelForCausalLM.fromPretrained(dir, { ...options, onWarning: (m) => got.push(m) });
  return got;
}

describe("countNonFinite on 16-bit floats", () => {
  it.each([
    ["bfloat16", 0x7f80],
    ["float16", 0x7c00],
  ] as const)(
    "%s: counts every bit pattern as its exponent says, at any position",
    (dtype, mask) => {
      // Every pattern once; then views starting at an odd element and of odd length, which
      // the two-per-word scan cannot take as they are.
      const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
      const expected = all.filter((h) => (h & mask) === mask).length;
      expect(expected).toBeGreaterThan(0);
      expect(countNonFinite(new Tensor(all, [65536], dtype))).toBe(expected);
      const shifted = all.subarray(1);
      expect(countNonFinite(new Tensor(shifted, [65535], dtype))).toBe(expected);
      for (const h of [mask, mask | 1, 0xffff, mask | 0x8000]) {
        for (const pos of [0, 1, 6]) {
          const one = new Uint16Array(7).fill(0x3f00 & ~mask);
          one[pos] = h;
          expect(countNonFinite(new Tensor(one, [7], dtype)), `${h} at ${pos}`).toBe(1);
          expect(countNonFinite(new Tensor(one.subarray(0, 6), [6], dtype))).toBe(pos < 6 ? 1 : 0);
        }
      }
      // With the exponent's lowest bit cleared, nothing is NaN or infinite.
      const finite = all.map((h) => h & ~(mask & -mask));
      expect(countNonFinite(new Tensor(finite, [65536], dtype))).toBe(0);
    },
  );
});

describe("loading weights with NaN or infinite values", () => {
  it("counts them in every float dtype", () => {
    const f32 = Tensor.from([
      1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -3,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(countNonFinite(f32)).toBe(3);
    expect(countNonFinite(f32.to("bfloat16"))).toBe(3);
    expect(countNonFinite(f32.to("float16"))).toBe(3);
    expect(countNonFinite(Tensor.from([1e6, 65504]).to("float16"))).toBe(1);
    expect(countNonFinite(Tensor.from([1, 2], [2], "int64"))).toBe(0);
  });

  it("warns with the tensor's name and count, in any dtype and on 4-bit loading", () => {
    const dir = poisoned({ 3: Number.NaN, 70: Number.POSITIVE_INFINITY });
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      const w = warnings(dir, { dtype });
      expect(w, dtype).toHaveLength(1);
      expect(w[0]).toMatch(
        /1 weight tensor\(s\) hold NaN or infinite values: model\.layers\.0\.self_attn\.q_proj\.weight \(2 of 4,096\)/,
      );
      expect(w[0]).toMatch(/the model's outputs will not be finite/);
    }
    const q = warnings(dir, { quantization: { loadIn4bit: true } });
    expect(q.join("\n")).toMatch(/model\.layers\.0\.self_attn\.q_proj\.weight \(2 of 4,096\)/);
    expect(warnings(join(FIXTURES, "tiny-llama"))).toEqual([]);
    expect(warnings(join(FIXTURES, "tiny-llama-bnb-nf4"))).toEqual([]);
  });

  it("warns when a weight overflows the dtype it is loaded in", () => {
    const dir = poisoned({ 5: 1e5 }, "model.layers.1.mlp.up_proj.weight");
    expect(warnings(dir, { dtype: "float32" })).toEqual([]);
    expect(warnings(dir, { dtype: "float16" }).join("\n")).toMatch(
      /model\.layers\.1\.mlp\.up_proj\.weight \(1 of 8,192\)/,
    );
  });
});
