import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixturePath } from "../../test/helpers/fixtures.js";
import { FileNotFoundError } from "../errors.js";
import { MemoryFiles } from "../io/files/model-files.js";
import { AutoModelForCausalLM, type CausalLM } from "../models/auto.js";
import { Tensor } from "../tensor/tensor.js";
import { PeftModel } from "./peft-model.js";

const BASE = fixturePath("models/tiny-llama");
const INPUT = Tensor.from([[1, 7, 19, 3, 44]]);
const inMemory = (dir: string) =>
  new MemoryFiles(readdirSync(dir).map((n) => [n, new Uint8Array(readFileSync(join(dir, n)))]));
const logitsOf = (peft: PeftModel<CausalLM>) =>
  Array.from(peft.forward({ inputIds: INPUT }).logits.toFlatNumbers());

describe.each(["llama-lora", "llama-vera", "llama-prefix-tuning"])(
  "the %s adapter's files",
  (name) => {
    const dir = fixturePath(`adapters/${name}`);

    it("load from memory as from the directory, in eval mode", () => {
      const fromDir = PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(BASE), dir);
      const fromMemory = PeftModel.fromPretrained(
        AutoModelForCausalLM.fromPretrained(BASE),
        inMemory(dir),
      );
      expect(fromMemory.model.training).toBe(false);
      expect(logitsOf(fromMemory)).toEqual(logitsOf(fromDir));
      const both = PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(BASE), dir);
      both.loadAdapter(inMemory(dir), "again");
      both.setAdapter("again");
      // Beside a second adapter the base products take another path under packed weights
      // (PEFT_PACK_WEIGHTS=1): equal to float32 rounding there, not bit for bit.
      const want = logitsOf(fromDir);
      const diff = Math.max(...logitsOf(both).map((v, i) => Math.abs(v - want[i]!)));
      expect(diff).toBeLessThan(1e-5);
    });

    it("come out as bytes equal to what savePretrained writes, and load back", () => {
      const peft = PeftModel.fromPretrained(AutoModelForCausalLM.fromPretrained(BASE), dir);
      const out = mkdtempSync(join(tmpdir(), "peft-adapter-files-"));
      try {
        peft.savePretrained(out);
        const files = peft.adapterFiles();
        expect(Object.keys(files).sort()).toEqual(readdirSync(out).sort());
        for (const [file, bytes] of Object.entries(files))
          expect(Buffer.from(bytes).equals(readFileSync(join(out, file)))).toBe(true);
        const back = PeftModel.fromPretrained(
          AutoModelForCausalLM.fromPretrained(BASE),
          new MemoryFiles(files),
        );
        expect(logitsOf(back)).toEqual(logitsOf(peft));
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  },
);

describe("adapter files in memory", () => {
  const dir = fixturePath("adapters/llama-lora");
  const base = () => AutoModelForCausalLM.fromPretrained(BASE);

  it("say which file is missing", () => {
    const files = Object.fromEntries(
      inMemory(dir)
        .names()
        .map((n) => [n, inMemory(dir).read(n)]),
    );
    const { "adapter_model.safetensors": weights, ...configOnly } = files;
    expect(() => PeftModel.fromPretrained(base(), new MemoryFiles(configOnly))).toThrow(
      "<memory>/adapter_model.safetensors: no adapter_model.safetensors in the adapter directory",
    );
    expect(() =>
      PeftModel.fromPretrained(
        base(),
        new MemoryFiles({ ...configOnly, "adapter_model.bin": weights! }),
      ),
    ).toThrow(/only adapter_model\.bin is present/);
    const { "adapter_config.json": _, ...weightsOnly } = files;
    expect(() => PeftModel.fromPretrained(base(), new MemoryFiles(weightsOnly))).toThrow(
      FileNotFoundError,
    );
  });

  it("come from savePretrained() without a directory as the directory's files, every adapter at its path", () => {
    const peft = PeftModel.fromPretrained(base(), dir);
    peft.loadAdapter(fixturePath("adapters/llama-dora"), "dora");
    const out = mkdtempSync(join(tmpdir(), "peft-adapter-files-"));
    try {
      peft.savePretrained(out);
      const files = peft.savePretrained();
      const onDisk = [
        ...readdirSync(out).filter((n) => n.endsWith(".json") || n.endsWith(".safetensors")),
        ...readdirSync(join(out, "dora")).map((n) => `dora/${n}`),
      ];
      expect(Object.keys(files).sort()).toEqual(onDisk.sort());
      for (const [path, bytes] of Object.entries(files))
        expect(Buffer.from(bytes).equals(readFileSync(join(out, path))), path).toBe(true);
      expect(Object.keys(peft.savePretrained({ selectedAdapters: ["dora"] })).sort()).toEqual([
        "dora/adapter_config.json",
        "dora/adapter_model.safetensors",
      ]);
      // One adapter's files out of them load as that adapter's directory does.
      const fromFiles = PeftModel.fromPretrained(base(), MemoryFiles.inFolder(files, "dora"));
      const fromDir = PeftModel.fromPretrained(base(), join(out, "dora"));
      expect(logitsOf(fromFiles)).toEqual(logitsOf(fromDir));
      expect(MemoryFiles.inFolder(files, "").names().sort()).toEqual([
        "adapter_config.json",
        "adapter_model.safetensors",
      ]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("name an unknown adapter", () => {
    const peft = PeftModel.fromPretrained(base(), dir);
    expect(() => peft.adapterFiles("other")).toThrow('adapterFiles: no adapter named "other"');
  });
});
