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
  info?: { wasm: string | null; threads: number; threadsJoined: number };
  probe?: Record<string, number>;
  error?: string;
}

/**
 * Seconds per LoRA step on the wasm backend in headless Chromium (a worker of a
 * cross-origin isolated page, so two threads) beside the same step in Node's wasm
 * backend with the same kernel build, on the SmolLM2-135M shape. Needs `npm run build`
 * and Debian's chromium. Options: --layers N (4), --batch BxT (4x256), --runs N (3),
 * --dtypes list (float32,bfloat16); --probe times single kernels and allocations instead,
 * to tell where a gap comes from; PEFT_CHROMIUM_FLAGS adds flags to the browser's command
 * line (e.g. --js-flags=...).
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
  const inBrowser = async (options: object): Promise<Timing> => {
    const page = await browser.newPage();
    await page.goto(`${server.url}bench.html#${encodeURIComponent(JSON.stringify(options))}`);
    await page.waitForFunction(() => (globalThis as { benchResult?: unknown }).benchResult, null, {
      timeout: 0,
    });
    const result = (await page.evaluate(
      () => (globalThis as { benchResult?: unknown }).benchResult,
    )) as Timing;
    await page.close();
    if (result.error !== undefined) throw new Error(`in the browser: ${result.error}`);
    return result;
  };
  try {
    if (args.includes("--probe")) await probe(inBrowser);
    else await steps(inBrowser, { config, dtypes, batch, seq, runs, layers });
  } finally {
    await browser.close();
    await server.close();
  }
}

/** The LoRA step in the browser's worker and in Node, per dtype. */
async function steps(
  inBrowser: (options: object) => Promise<Timing>,
  o: { config: object; dtypes: string[]; batch: number; seq: number; runs: number; layers: number },
): Promise<void> {
  const { config, dtypes, batch, seq, runs, layers } = o;
  console.log(
    `LoRA step (r=16 on q,k,v,o), SmolLM2-135M shape with ${layers} layers, batch ${batch}x${seq}, wasm backend; seconds per step, median of ${runs}`,
  );
  console.log("base       browser (s)   node (s)   ratio   build          threads (started of)");
  for (const dtype of dtypes) {
    const options = { config, dtype, batch, seq, runs };
    const browserTiming = await inBrowser(options);
    const inNode = nodeTiming(options, browserTiming.info!.wasm === "relaxed-simd");
    const ratio = browserTiming.seconds / inNode.seconds;
    console.log(
      [
        dtype.padEnd(10),
        browserTiming.seconds.toFixed(3).padStart(11),
        inNode.seconds.toFixed(3).padStart(10),
        ratio.toFixed(3).padStart(7),
        `  ${String(browserTiming.info!.wasm).padEnd(14)}`,
        `${browserTiming.info!.threadsJoined} of ${browserTiming.info!.threads}`.padStart(10),
      ].join(" "),
    );
    resultLine("browser", "s/step", browserTiming.seconds, null, {
      dtype,
      node: inNode.seconds,
      ratio,
      build: String(browserTiming.info!.wasm),
    });
  }
}

/**
 * Single kernels and allocations in the browser's worker and in Node: in Chromium a fresh
 * large ArrayBuffer's pages fault in on first touch, where Node reuses its heap's.
 */
async function probe(inBrowser: (options: object) => Promise<Timing>): Promise<void> {
  const inThePage = await inBrowser({ probe: true });
  const browserTimes = inThePage.probe!;
  const nodeTimes = nodeTiming({ probe: true }, inThePage.info!.wasm === "relaxed-simd").probe!;
  console.log("operation                                browser (ms)   node (ms)   ratio");
  for (const [name, ms] of Object.entries(browserTimes)) {
    const node = nodeTimes[name]!;
    console.log(
      `${name.padEnd(40)} ${ms.toFixed(3).padStart(12)} ${node.toFixed(3).padStart(11)} ${(ms / node).toFixed(2).padStart(7)}`,
    );
    resultLine("browser-probe", "ms", ms, null, { operation: name, node, ratio: ms / node });
  }
}

/** The same work in Node on the wasm backend, with the relaxed build when the browser ran it. */
function nodeTiming(options: { probe?: boolean; [k: string]: unknown }, relaxed: boolean): Timing {
  const work = options.probe
    ? `{ probe: (await import(${JSON.stringify(pathToFileURL(`${root}web/bench-probe.js`).href)})).probeOperations(p) }`
    : `(await import(${JSON.stringify(pathToFileURL(`${root}web/bench-step.js`).href)})).timeLoraSteps(p, ${JSON.stringify(options)})`;
  const script = `
    const p = await import(${JSON.stringify(pathToFileURL(`${root}dist/index.js`).href)});
    console.log(JSON.stringify({ info: p.backendInfo(), ...${work} }));
  `;
  const flags = relaxed ? ["--experimental-wasm-relaxed-simd"] : [];
  return JSON.parse(
    execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
      encoding: "utf8",
      env: { ...process.env, PEFT_BACKEND: "wasm" },
    }),
  ) as Timing;
}
