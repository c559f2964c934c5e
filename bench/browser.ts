import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { smolLM2Config } from "./forward.js";
import { arg, resultLine } from "./util.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const CHROMIUM = [process.env.PEFT_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];

interface Timing {
  seconds: number;
  all: number[];
  info?: { wasm: string | null; threads: number };
  error?: string;
}

/**
 * Seconds per LoRA step on the wasm backend in headless Chromium (a worker of a
 * cross-origin isolated page, so two threads) beside the same step in Node's wasm
 * backend with the same kernel build, on the SmolLM2-135M shape. Needs `npm run build`
 * and Debian's chromium. Options: --layers N (4), --batch BxT (4x256), --runs N (3),
 * --dtypes list (float32,bfloat16); PEFT_CHROMIUM_FLAGS adds flags to the browser's
 * command line (e.g. --js-flags=...).
 */
export async function main(args: string[]): Promise<void> {
  const executablePath = CHROMIUM.find((p) => p !== undefined && p !== "" && existsSync(p));
  if (executablePath === undefined) {
    console.error(
      "bench browser: no chromium found (apt-get install chromium, or set PEFT_CHROMIUM)",
    );
    process.exit(1);
  }
  const layers = Number(arg(args, "layers", "4"));
  const runs = Number(arg(args, "runs", "3"));
  const dtypes = arg(args, "dtypes", "float32,bfloat16").split(",");
  const [batch, seq] = arg(args, "batch", "4x256").split("x").map(Number);
  const config = smolLM2Config(layers);
  const { startWebServer } = await import(pathToFileURL(`${root}scripts/serve-web.mjs`).href);
  const { chromium } = await import("playwright-core");
  const server = await startWebServer({ port: 0 });
  const extra = (process.env.PEFT_CHROMIUM_FLAGS ?? "").split(" ").filter(Boolean);
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", ...extra] });
  console.log(
    `LoRA step (r=16 on q,k,v,o), SmolLM2-135M shape with ${layers} layers, batch ${batch}x${seq}, wasm backend; seconds per step, median of ${runs}`,
  );
  console.log("base       browser (s)   node (s)   ratio   build          threads");
  try {
    for (const dtype of dtypes) {
      const options = { config, dtype, batch, seq, runs };
      const page = await browser.newPage();
      await page.goto(`${server.url}bench.html#${encodeURIComponent(JSON.stringify(options))}`);
      await page.waitForFunction(
        () => (globalThis as { benchResult?: unknown }).benchResult,
        null,
        {
          timeout: 0,
        },
      );
      const inBrowser = (await page.evaluate(
        () => (globalThis as { benchResult?: unknown }).benchResult,
      )) as Timing;
      await page.close();
      if (inBrowser.error !== undefined) throw new Error(`in the browser: ${inBrowser.error}`);
      const inNode = nodeTiming(options, inBrowser.info!.wasm === "relaxed-simd");
      const ratio = inBrowser.seconds / inNode.seconds;
      console.log(
        [
          dtype.padEnd(10),
          inBrowser.seconds.toFixed(3).padStart(11),
          inNode.seconds.toFixed(3).padStart(10),
          ratio.toFixed(3).padStart(7),
          `  ${String(inBrowser.info!.wasm).padEnd(14)}`,
          String(inBrowser.info!.threads).padStart(7),
        ].join(" "),
      );
      resultLine("browser", "s/step", inBrowser.seconds, null, {
        dtype,
        node: inNode.seconds,
        ratio,
        build: String(inBrowser.info!.wasm),
      });
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

/** The same step in Node on the wasm backend, with the relaxed build when the browser ran it. */
function nodeTiming(options: object, relaxed: boolean): Timing {
  const script = `
    const p = await import(${JSON.stringify(pathToFileURL(`${root}dist/index.js`).href)});
    const { timeLoraSteps } = await import(${JSON.stringify(pathToFileURL(`${root}web/bench-step.js`).href)});
    console.log(JSON.stringify({ info: p.backendInfo(), ...timeLoraSteps(p, ${JSON.stringify(options)}) }));
  `;
  const flags = relaxed ? ["--experimental-wasm-relaxed-simd"] : [];
  return JSON.parse(
    execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
      encoding: "utf8",
      env: { ...process.env, PEFT_BACKEND: "wasm" },
    }),
  ) as Timing;
}
