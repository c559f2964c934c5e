import { describe, expect, it } from "vitest";
import { fixturePath } from "../../test/helpers/fixtures.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import type { Tensor } from "../tensor/tensor.js";
import { dequantize4bit, quantize4bit } from "./blockwise.js";
import { DYNAMIC_MAP, FP4_CODE, NF4_CODE } from "./codes.js";

// test/fixtures/quant/nf4.safetensors: bitsandbytes' own quantize_4bit on a [128, 64] weight.
const F = (() => {
  const file = SafetensorsFile.open(fixturePath("quant/nf4.safetensors"));
  try {
    return file.loadAll();
  } finally {
    file.close();
  }
})();
const get = (k: string): Tensor => F.get(k)!;
const bitsOf = (t: Tensor | Float32Array) => {
  const a = t instanceof Float32Array ? t : (t.data as Float32Array);
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
};
const weight = get("weight").data as Float32Array;

describe("4-bit quantisation is byte-identical to bitsandbytes", () => {
  it("uses bitsandbytes' code tables and dynamic map", () => {
    expect(bitsOf(NF4_CODE)).toEqual(bitsOf(get("nf4_code")));
    expect(bitsOf(FP4_CODE)).toEqual(bitsOf(get("fp4_code")));
    expect(bitsOf(DYNAMIC_MAP)).toEqual(bitsOf(get("nf4_dq_nested_code")));
  });

  it.each(["nf4", "fp4"] as const)("%s: packed bytes, absmax and dequantised values", (t) => {
    const { packed, state } = quantize4bit(weight, [128, 64], { quantType: t });
    expect(Array.from(packed)).toEqual(Array.from(get(`${t}_packed`).data as Uint8Array));
    expect(bitsOf(state.absmax)).toEqual(bitsOf(get(`${t}_absmax`)));
    expect(bitsOf(dequantize4bit(packed, state))).toEqual(bitsOf(get(`${t}_dequant`)));
  });

  it.each(["nf4", "fp4"] as const)(
    "%s with double quantisation: 8-bit absmax, nested absmax, offset, dequantised values",
    (t) => {
      const { packed, state } = quantize4bit(weight, [128, 64], {
        quantType: t,
        doubleQuant: true,
      });
      const n = state.nested!;
      expect(Array.from(packed)).toEqual(Array.from(get(`${t}_dq_packed`).data as Uint8Array));
      expect(Array.from(n.codes)).toEqual(Array.from(get(`${t}_dq_absmax`).data as Uint8Array));
      expect(bitsOf(n.absmax)).toEqual(bitsOf(get(`${t}_dq_nested_absmax`)));
      expect(Math.fround(n.offset)).toBe(get(`${t}_dq_nested_offset`).item());
      expect(bitsOf(state.absmax)).toEqual(bitsOf(get(`${t}_dq_absmax_dequant`)));
      expect(bitsOf(dequantize4bit(packed, state))).toEqual(bitsOf(get(`${t}_dq_dequant`)));
    },
  );

  it("handles odd sizes, partial blocks and all-zero blocks", () => {
    const v = Float32Array.from({ length: 101 }, (_, i) => (i < 64 ? 0 : Math.sin(i)));
    const { packed, state } = quantize4bit(v, [101], { blocksize: 32 });
    expect(packed.length).toBe(51);
    const back = dequantize4bit(packed, state);
    for (let i = 0; i < 101; i++)
      expect(Math.abs(back[i] - v[i])).toBeLessThanOrEqual(
        0.2 * state.absmax[Math.floor(i / 32)] + 1e-7,
      );
    expect(Array.from(back.subarray(0, 64))).toEqual(new Array(64).fill(0));
    expect(() => quantize4bit(v, [101], { blocksize: 48 })).toThrow(
      /blocksize must be a power of two from 32 to 4096, got 48/,
    );
    expect(() => quantize4bit(v, [101], { quantType: "int4" as "nf4" })).toThrow(
      /unknown 4-bit quant type "int4"/,
    );
  });
});
