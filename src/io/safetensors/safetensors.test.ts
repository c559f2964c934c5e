import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileFormatError, FileNotFoundError, PeftError } from "../../errors.js";
import { arange, randn } from "../../tensor/creation.js";
import { Generator } from "../../tensor/random.js";
import { Tensor } from "../../tensor/tensor.js";
import { concatBytes as concat } from "../files/byte-source.js";
import { SafetensorsFile } from "./reader.js";
import { saveSafetensors, serializeSafetensors } from "./writer.js";

/** A file by hand: header JSON and raw data, exactly as given (no validation). */
function rawFile(header: unknown, data: Uint8Array, declaredLength?: number): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(declaredLength ?? json.byteLength), true);
  return concat([prefix, json, data]);
}

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ["w.f32", randn([3, 4], { seed: 1 })],
    ["w.f64", randn([2], { seed: 2, dtype: "float64" })],
    ["w.f16", randn([5], { seed: 3, dtype: "float16" })],
    ["w.bf16", randn([2, 3], { seed: 4, dtype: "bfloat16" })],
    ["ids.i64", Tensor.from([1, -2, 3], [3], "int64")],
    ["ids.i32", Tensor.from([7, 8], [2], "int32")],
    ["bytes.u8", Tensor.from([0, 255, 9], [3], "uint8")],
    ["mask.bool", Tensor.from([true, false], [2], "bool")],
    ["empty", randn([0, 3], { seed: 5 })],
    ["scalar", Tensor.from(2.5)],
  ]);
}

describe("safetensors writer and reader", () => {
  it("round-trips every supported dtype bit for bit through a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "peft-st-"));
    const path = join(dir, "model.safetensors");
    const tensors = sample();
    saveSafetensors(path, tensors, { format: "pt" });
    expect(readdirSync(dir)).toEqual(["model.safetensors"]); // no temporary file left behind
    const file = SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ format: "pt" });
    expect(new Set(file.keys())).toEqual(new Set(tensors.keys()));
    for (const [name, t] of tensors) {
      const back = file.load(name);
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(Array.from(back.data as ArrayLike<unknown>)).toEqual(
        Array.from(t.data as ArrayLike<unknown>),
      );
    }
    file.close();
  });

  it("lays bytes out as Python's safetensors does", () => {
    const bytes = concat(serializeSafetensors(sample(), { format: "pt" }));
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.startsWith('{"__metadata__":{"format":"pt"},')).toBe(true);
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    const header = JSON.parse(text);
    // Data order: larger dtypes first (F64, I64 before F32 ... before BOOL), then by name.
    const order = Object.keys(header).filter((k) => k !== "__metadata__");
    expect(order).toEqual([
      "ids.i64",
      "w.f64",
      "empty",
      "scalar",
      "w.f32",
      "ids.i32",
      "w.bf16",
      "w.f16",
      "bytes.u8",
      "mask.bool",
    ]);
    expect(header["w.f32"]).toEqual({ dtype: "F32", shape: [3, 4], data_offsets: [44, 92] }); // after 24 + 16 bytes of 64-bit data and the 4-byte scalar
  });

  it("reads a file written by Python's safetensors (a transformers checkpoint)", () => {
    const path = new URL(
      "../../../test/fixtures/models/tiny-llama/model.safetensors",
      import.meta.url,
    );
    const file = SafetensorsFile.open(path.pathname);
    expect(file.metadata).toEqual({ format: "pt" });
    expect(file.keys()).toHaveLength(21);
    const w = file.load("model.layers.0.self_attn.k_proj.weight");
    expect(w.shape).toEqual([32, 64]);
    expect(w.dtype).toBe("float32");
    // Re-serialising what we read gives the same bytes as the original file.
    const all = file.loadAll();
    const again = concat(serializeSafetensors(all, { ...file.metadata }));
    expect(Buffer.from(again).equals(readFileSync(path))).toBe(true);
    file.close();
  });

  it("loads lazily: only the requested tensor's bytes are read", () => {
    const bytes = concat(
      serializeSafetensors({ a: arange(4, undefined, 1, { dtype: "float32" }), b: randn([2]) }),
    );
    // Corrupt b's bytes region only: a still loads, header stays valid.
    const file = SafetensorsFile.fromBytes(bytes);
    expect(file.load("a").toArray()).toEqual([0, 1, 2, 3]);
    expect(() => file.load("c")).toThrow(/no tensor named "c"/);
  });

  it("reads into a caller's scratch buffer when it is large enough, else into fresh memory", () => {
    const tensors = sample();
    const file = SafetensorsFile.fromBytes(concat(serializeSafetensors(tensors)));
    const scratch = new ArrayBuffer(24);
    for (const [name, t] of tensors) {
      const loaded = file.load(name, scratch);
      expect(loaded.dtype).toBe(t.dtype);
      expect(loaded.toArray(), name).toEqual(t.toArray());
      expect(loaded.data.buffer === scratch, name).toBe(t.data.byteLength <= 24);
    }
  });
});

describe("safetensors validation", () => {
  const data16 = new Uint8Array(16);
  const ok = { x: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };
  const cases: [string, Uint8Array, RegExp][] = [
    ["too short for the length", new Uint8Array(5), /at least 8 bytes/],
    ["length past the end", rawFile(ok, data16, 10_000), /runs past the end of the file/],
    ["huge length", rawFile(ok, data16, 2 ** 40), /exceeds the limit/],
    ["not JSON", rawFile("{not json", data16), /not valid JSON/],
    ["not an object", rawFile("[1,2]", data16), /must be a JSON object/],
    ["bad utf-8", rawFile("", data16).fill(0xff, 8, 9), /header length|UTF-8|JSON/],
    [
      "unknown dtype",
      rawFile({ x: { dtype: "F33", shape: [4], data_offsets: [0, 16] } }, data16),
      /unknown dtype "F33"/,
    ],
    [
      "bad shape",
      rawFile({ x: { dtype: "F32", shape: [2, -2], data_offsets: [0, 16] } }, data16),
      /invalid shape \[2,-2\]/,
    ],
    [
      "shape/bytes mismatch",
      rawFile({ x: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, data16),
      /needs 12 bytes, but its data_offsets \[0, 16\] span 16/,
    ],
    [
      "offsets out of range",
      rawFile({ x: { dtype: "F32", shape: [8], data_offsets: [0, 32] } }, data16),
      /only 16 bytes/,
    ],
    [
      "overlap",
      rawFile(
        {
          x: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
          y: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
        },
        data16,
      ),
      /overlaps/,
    ],
    [
      "gap",
      rawFile({ x: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }, data16),
      /gap in the data/,
    ],
    [
      "trailing bytes",
      rawFile({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, data16),
      /cover only 8/,
    ],
    [
      "reversed offsets",
      rawFile({ x: { dtype: "F32", shape: [0], data_offsets: [16, 0] } }, data16),
      /invalid data_offsets/,
    ],
    [
      "metadata not strings",
      rawFile({ __metadata__: { a: 1 }, ...ok }, data16),
      /must be a string/,
    ],
  ];

  it.each(cases)("rejects %s with a FileFormatError", (_name, bytes, message) => {
    expect(() => SafetensorsFile.fromBytes(bytes, "bad.safetensors")).toThrow(FileFormatError);
    expect(() => SafetensorsFile.fromBytes(bytes, "bad.safetensors")).toThrow(message);
  });

  it("names dtypes it parses but does not load", () => {
    const file = SafetensorsFile.fromBytes(
      rawFile({ x: { dtype: "I16", shape: [8], data_offsets: [0, 16] } }, data16),
    );
    expect(file.entry("x").dtype).toBe("I16");
    expect(() => file.load("x")).toThrow(/dtype I16, which peft-ts does not load/);
  });

  it("reports a missing file as FileNotFoundError", () => {
    expect(() => SafetensorsFile.open("/nonexistent/model.safetensors")).toThrow(FileNotFoundError);
  });

  it("survives 10,000 mutated files: every outcome is a valid load or a typed error", () => {
    const base = concat(serializeSafetensors(sample(), { format: "pt" }));
    const headerLength = Number(new DataView(base.buffer).getBigUint64(0, true));
    const g = new Generator(99);
    const rnd = (n: number) => g.nextUint32() % n;
    const counts = { loaded: 0, rejected: 0 };
    for (let trial = 0; trial < 10_000; trial++) {
      let bytes: Uint8Array = base.slice();
      const kind = trial % 6;
      if (kind === 0) {
        bytes = bytes.subarray(0, rnd(bytes.length)); // truncation
      } else if (kind === 1) {
        // header length overflow / underflow
        new DataView(bytes.buffer).setBigUint64(
          0,
          BigInt(g.nextUint32()) * BigInt(1 + rnd(3)),
          true,
        );
      } else if (kind === 2) {
        for (let k = 0; k < 1 + rnd(4); k++) bytes[8 + rnd(headerLength)] = rnd(256); // random header bytes
      } else if (kind === 3) {
        // numbers in the header changed: offsets and shapes out of range, overlapping, mismatched
        const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
        const mutated = text.replace(/\d+/g, (m) =>
          rnd(8) === 0 ? String(Number(m) + rnd(40) - 20) : m,
        );
        const enc = new TextEncoder().encode(mutated);
        bytes = rawFile(new TextDecoder().decode(enc), bytes.subarray(8 + headerLength));
      } else if (kind === 4) {
        // dtype names swapped for known and unknown ones
        const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
        const names = ["F32", "F16", "I64", "U8", "BOOL", "F64", "X9", "I16", "F8_E4M3"];
        const mutated = text.replace(/"dtype":"[A-Z0-9_]+"/g, (m) =>
          rnd(3) === 0 ? `"dtype":"${names[rnd(names.length)]}"` : m,
        );
        bytes = rawFile(mutated, bytes.subarray(8 + headerLength));
      } else {
        bytes[rnd(bytes.length)] ^= 1 << rnd(8); // any single bit flip
      }
      try {
        const file = SafetensorsFile.fromBytes(bytes, `mutant-${trial}`);
        for (const k of file.keys()) {
          try {
            file.load(k);
          } catch (e) {
            if (!(e instanceof FileFormatError)) throw e;
          }
        }
        counts.loaded++;
      } catch (e) {
        if (!(e instanceof PeftError)) {
          throw new Error(
            `mutant ${trial} (kind ${kind}) raised an untyped error: ${(e as Error).stack}`,
          );
        }
        counts.rejected++;
      }
    }
    expect(counts.loaded + counts.rejected).toBe(10_000);
    expect(counts.rejected).toBeGreaterThan(3000);
  });

  it("leaves the previous file intact when a save fails", () => {
    const dir = mkdtempSync(join(tmpdir(), "peft-st-"));
    const path = join(dir, "a.safetensors");
    writeFileSync(path, "previous");
    const bad = { __metadata__: randn([1]) } as unknown as Record<string, Tensor>;
    expect(() => saveSafetensors(path, bad)).toThrow(/cannot be a tensor name/);
    expect(readFileSync(path, "utf8")).toBe("previous");
    expect(readdirSync(dir)).toEqual(["a.safetensors"]);
  });
});
