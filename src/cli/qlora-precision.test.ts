import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { saveModelDirectory } from "../models/save.js";
import { buildDemoModel, writeDemoData } from "./demo/build.js";

// QLoRA from the command line when the training precision differs from the 4-bit compute
// dtype: the combinations that once failed on their first backward pass.
const root = fileURLToPath(new URL("../..", import.meta.url));
const cli = join(root, "dist/cli/main.js");
const tmp = () => mkdtempSync(join(tmpdir(), "peft-qlora-"));
const work = tmp();
const model = buildDemoModel(join(work, "model"));
const data = writeDemoData(join(work, "train.jsonl"));
// A pre-quantised checkpoint whose quantization_config says compute float32.
const prequantised = join(work, "model-nf4");
saveModelDirectory(
  AutoModelForCausalLM.fromPretrained(model, {
    quantization: { loadIn4bit: true, quantType: "nf4", doubleQuant: true },
  }),
  model,
  prequantised,
);

const peft = (args: string[]) =>
  execFileSync(process.execPath, [cli, ...args], { encoding: "utf8", stdio: "pipe" });

const CASES: [string, string, string, string[]][] = [
  ["lora", "the float32 model", model, ["--load-in-4bit", "--precision", "bfloat16"]],
  ["dora", "the float32 model", model, ["--load-in-4bit", "--precision", "float16"]],
  [
    "vera",
    "the float32 model",
    model,
    ["--load-in-4bit", "--dtype", "bfloat16", "--precision", "float16"],
  ],
  [
    "lora",
    "a pre-quantised checkpoint",
    prequantised,
    ["--dtype", "bfloat16", "--precision", "bfloat16"],
  ],
];

describe("peft train on a 4-bit base in another precision", () => {
  it.each(CASES)(
    "--method %s on %s with %j trains, saves finite weights and generates",
    (method, _what, dir, extra) => {
      const out = tmp();
      const stdout = peft([
        "train",
        "--model",
        dir,
        "--data",
        data,
        "--out",
        out,
        "--method",
        method,
        "--max-steps",
        "2",
        ...extra,
      ]);
      expect(stdout).toMatch(/final loss \d/);
      const file = SafetensorsFile.open(join(out, "adapter_model.safetensors"));
      for (const k of file.keys())
        expect(file.load(k).toFloat32Array().every(Number.isFinite), k).toBe(true);
      file.close();
      expect(existsSync(join(out, "adapter_config.json"))).toBe(true);
      const text = peft([
        "generate",
        "--model",
        dir,
        "--adapter",
        out,
        "--prompt",
        "Q: opposite of hot?\nA:",
        "--max-new-tokens",
        "3",
      ]);
      expect(text.length).toBeGreaterThan(0);
    },
  );
});
