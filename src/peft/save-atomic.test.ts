import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { fixturePath } from "../../test/helpers/fixtures.js";
import { ValueError } from "../errors.js";
import { AutoModelForCausalLM } from "../models/auto.js";
import { Generator } from "../tensor/random.js";
import { getPeftModel } from "./peft-model.js";
import { readAdapter, type SaveStep } from "./save-load.js";
import type { LoraConfig } from "./tuners/lora/config.js";

// The writer runs in its own process (built code, as `npm test` builds first) so that it
// can be killed at any instant.
const writer = fileURLToPath(new URL("../../test/helpers/adapter-writer.mjs", import.meta.url));
const tmp = () => mkdtempSync(join(tmpdir(), "peft-atomic-"));
const writeOnce = (dir: string, r: number, alpha: number, killAt?: SaveStep) =>
  spawnSync(process.execPath, [
    writer,
    dir,
    "once",
    String(r),
    String(alpha),
    ...(killAt ? [killAt] : []),
  ]);

/** Reads the adapter and returns its r and alpha after checking they belong to its weights. */
function readPair(dir: string): [number, number] {
  const { config, tensors } = readAdapter(dir, () => {});
  const c = config as LoraConfig;
  const prefix = "base_model.model.model.layers.0.self_attn.q_proj";
  const a = tensors.get(`${prefix}.lora_A.weight`)!;
  const b = tensors.get(`${prefix}.lora_B.weight`)!.toFloat32Array();
  expect(a.shape[0], "lora_A's rank is the config's r").toBe(c.r);
  expect(b[0], "lora_B was saved with the config's alpha").toBeCloseTo(c.loraAlpha / 1000, 7);
  return [c.r, c.loraAlpha];
}

const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.startsWith("."));

describe("adapter names", () => {
  const model = () => AutoModelForCausalLM.fromPretrained(fixturePath("models/tiny-llama"));
  const lora = { peftType: "LORA" as const, r: 2, targetModules: ["q_proj"] };

  it.each([
    "../x",
    "a/../../x",
    "a/b",
    "a\\b",
    ".",
    "..",
    "",
    " ",
    "adapter_model.safetensors",
    "x\0y",
  ])("refuses %j before anything is written", (name) => {
    expect(() => getPeftModel(model(), lora, { adapterName: name })).toThrow(ValueError);
    const p = getPeftModel(model(), lora);
    expect(() => p.addAdapter(name, p.peftConfig.get("default")!)).toThrow(
      /adapter name .* is not allowed/,
    );
    expect([...p.peftConfig.keys()]).toEqual(["default"]);
  });

  it("saves a named adapter in its own folder inside the output directory", () => {
    const p = getPeftModel(model(), lora);
    p.addAdapter("math", p.peftConfig.get("default")!);
    const dir = tmp();
    p.savePretrained(dir);
    expect(readdirSync(dir).sort()).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
      "math",
    ]);
    expect(existsSync(join(dir, "math", "adapter_config.json"))).toBe(true);
  });
});

describe("an adapter save is atomic as a whole", () => {
  it.each(["config-staged", "weights-written", "config-written"] as SaveStep[])(
    "a kill after %s leaves one complete adapter, old or new",
    (step) => {
      const dir = tmp();
      expect(writeOnce(dir, 4, 8).status).toBe(0);
      const killed = writeOnce(dir, 8, 16, step);
      expect(killed.signal).toBe("SIGKILL");
      const [r, alpha] = readPair(dir);
      // Before the weights are in place the old adapter stands; after, the new one.
      expect([r, alpha]).toEqual(step === "config-staged" ? [4, 8] : [8, 16]);
      // A reader finishes a killed save, so PEFT (which knows nothing of it) sees the pair too.
      if (step === "weights-written") expect(readPair(dir)).toEqual([8, 16]);
      // The next save cleans up what the killed one left.
      expect(writeOnce(dir, 4, 8).status).toBe(0);
      expect(leftovers(dir)).toEqual([]);
      expect(readPair(dir)).toEqual([4, 8]);
    },
  );

  it("random kills of a writer saving over and over always leave a complete pair", async () => {
    const dir = tmp();
    expect(writeOnce(dir, 4, 8).status).toBe(0);
    const gen = new Generator(1234);
    for (let trial = 0; trial < 12; trial++) {
      const child = spawn(process.execPath, [writer, dir, "loop"], { stdio: "ignore" });
      const delay = 150 + Math.floor(gen.nextFloat24() * 250);
      await new Promise((r) => setTimeout(r, delay));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const [r, alpha] = readPair(dir);
      expect([
        [4, 8],
        [8, 16],
      ]).toContainEqual([r, alpha]);
    }
    expect(writeOnce(dir, 8, 16).status).toBe(0);
    expect(leftovers(dir)).toEqual([]);
  }, 30_000);

  it("a reader racing a writer sees the old pair or the new pair, never a mix", async () => {
    const dir = tmp();
    expect(writeOnce(dir, 4, 8).status).toBe(0);
    const child = spawn(process.execPath, [writer, dir, "loop"], { stdio: "ignore" });
    const seen = new Map<string, number>();
    const end = Date.now() + 2500;
    try {
      await new Promise((r) => setTimeout(r, 200)); // the writer's start-up
      while (Date.now() < end) {
        const key = readPair(dir).join("/");
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (seen.size === 2 && [...seen.values()].every((n) => n > 20) && Date.now() > end - 1500)
          break;
      }
    } finally {
      child.kill("SIGKILL");
    }
    expect([...seen.keys()].sort()).toEqual(["4/8", "8/16"]);
  }, 30_000);
});
