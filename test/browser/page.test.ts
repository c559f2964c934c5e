import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const chromiumPath = [process.env.PEFT_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .filter((p): p is string => p !== undefined && p !== "")
  .find(existsSync);
// CI installs Debian's chromium and sets PEFT_REQUIRE_BROWSER=1, so this never skips there.
const required = process.env.PEFT_REQUIRE_BROWSER === "1";
const STEPS = 40;

interface PageResult {
  error?: string;
  prompts: string[];
  before: string[];
  after: string[];
  losses: number[];
  seconds: number;
  files: Record<string, string>;
}

describe.runIf(chromiumPath !== undefined || required)("the demo page in headless Chromium", () => {
  let server: { url: string; close(): Promise<void> };
  let browser: import("playwright-core").Browser;
  beforeAll(async () => {
    if (chromiumPath === undefined)
      throw new Error(
        "PEFT_REQUIRE_BROWSER=1, but no chromium was found (apt-get install chromium, or set PEFT_CHROMIUM)",
      );
    if (!existsSync(`${root}dist/index.js`))
      throw new Error("dist/ is missing: run `npm run build` first");
    const { startWebServer } = await import(pathToFileURL(`${root}scripts/serve-web.mjs`).href);
    server = await startWebServer({ port: 0 });
    const { chromium } = await import("playwright-core");
    // Containers run as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("trains LoRA in a worker: the loss falls, the answers change, and the adapter is Node's, byte for byte", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(server.url);
    expect(
      await page.evaluate(
        () => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated,
      ),
    ).toBe(true);
    const shots = process.env.PEFT_SCREENSHOTS;
    if (shots) mkdirSync(shots, { recursive: true });
    if (shots) await page.screenshot({ path: join(shots, "web-before.png"), fullPage: true });
    await page.fill("#steps", String(STEPS));
    await page.click("#train-demo");
    await page.waitForFunction(() => (globalThis as { peftResult?: unknown }).peftResult, null, {
      timeout: 300_000,
    });
    if (shots) await page.screenshot({ path: join(shots, "web-after.png"), fullPage: true });
    const info = await page.evaluate(() => (globalThis as { peftInfo?: unknown }).peftInfo);
    const result = (await page.evaluate(() => {
      const r = (globalThis as { peftResult?: Record<string, unknown> }).peftResult!;
      const files = (r.files ?? {}) as Record<string, Uint8Array>;
      const base64 = (b: Uint8Array) => btoa(Array.from(b, (c) => String.fromCharCode(c)).join(""));
      return {
        ...r,
        files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, base64(v)])),
      };
    })) as PageResult;
    expect(result.error).toBeUndefined();
    expect(problems).toEqual([]);
    // Both threads took part: the page started the matmul worker before training.
    expect(info).toMatchObject({ backend: "wasm", threads: 2, threadsJoined: 2 });
    expect(result.losses).toHaveLength(STEPS);
    expect(result.losses[STEPS - 1]).toBeLessThan(result.losses[0]! * 0.5);
    expect(result.after).not.toEqual(result.before);
    expect(Object.keys(result.files).sort()).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
    ]);

    // The same run in Node, on the wasm backend with the same build of the kernels.
    const work = mkdtempSync(join(tmpdir(), "peft-web-ref-"));
    try {
      const variant = (info as { wasm: string }).wasm;
      const script = `
        import { readdirSync, readFileSync } from "node:fs";
        const p = await import(${JSON.stringify(pathToFileURL(`${root}dist/index.js`).href)});
        const demo = await import(${JSON.stringify(pathToFileURL(`${root}dist/cli/demo/build.js`).href)});
        const { fineTune } = await import(${JSON.stringify(pathToFileURL(`${root}web/train.js`).href)});
        const dir = demo.buildDemoModel(${JSON.stringify(join(work, "model"))});
        const data = demo.writeDemoData(${JSON.stringify(join(work, "train.jsonl"))});
        const files = new p.MemoryFiles(readdirSync(dir).map((n) => [n, readFileSync(dir + "/" + n)]), {
          location: ${JSON.stringify(new URL("model", server.url).href)},
        });
        const r = fineTune(p, files, { name: "train.jsonl", bytes: readFileSync(data) }, { steps: ${STEPS}, seed: 0 });
        const files64 = Object.fromEntries(Object.entries(r.files).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
        console.log(JSON.stringify({ wasm: p.backendInfo().wasm, losses: r.losses, after: r.after, files: files64 }));
      `;
      const flags = variant === "relaxed-simd" ? ["--experimental-wasm-relaxed-simd"] : [];
      const node = JSON.parse(
        execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
          encoding: "utf8",
          env: { ...process.env, PEFT_BACKEND: "wasm" },
          maxBuffer: 1 << 26,
        }),
      ) as { wasm: string; losses: number[]; after: string[]; files: Record<string, string> };
      expect(node.wasm).toBe(variant);
      expect(result.losses).toEqual(node.losses);
      expect(result.after).toEqual(node.after);
      // Compared by digest: a mismatch then prints two lines, not two adapters in base64.
      const digests = (files: Record<string, string>) =>
        Object.fromEntries(
          Object.entries(files).map(([k, v]) => [
            k,
            createHash("sha256").update(Buffer.from(v, "base64")).digest("hex"),
          ]),
        );
      expect(digests(result.files)).toEqual(digests(node.files));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    await page.close();
  }, 600_000);
});
