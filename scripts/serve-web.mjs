// `npm run web`: serves the demo page (web/), peft-ts bundled for browsers, the demo's tiny
// model and dataset, with the headers that make the page cross-origin isolated (so the
// wasm kernels may share memory across threads); --no-isolation serves without them.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".jsonl": "application/jsonl",
};

/** peft-ts's package entry bundled as bundlers do for browsers (package.json's browser field). */
export async function bundleForBrowsers() {
  const { build } = await import("esbuild");
  const out = await build({
    entryPoints: [join(root, "dist", "index.js")],
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0].contents;
}

/** Starts the server; resolves to its URL and a close function. */
export async function startWebServer({ port = 8080, host = "127.0.0.1", isolated = true } = {}) {
  const demo = await import(pathToFileURL(join(root, "dist", "cli", "demo", "build.js")).href);
  const work = mkdtempSync(join(tmpdir(), "peft-web-"));
  const modelDir = demo.buildDemoModel(join(work, "model"));
  const dataPath = demo.writeDemoData(join(work, "train.jsonl"));
  const bundle = await bundleForBrowsers();
  const routes = new Map([
    ["/peft.js", bundle],
    ["/train.jsonl", readFileSync(dataPath)],
  ]);
  for (const name of readdirSync(join(root, "web")))
    routes.set(`/${name}`, readFileSync(join(root, "web", name)));
  routes.set("/", routes.get("/index.html"));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    let body = routes.get(path);
    if (body === undefined && path.startsWith("/model/") && !path.slice(7).includes("/")) {
      try {
        body = readFileSync(join(modelDir, path.slice(7)));
      } catch {}
    }
    const headers = isolated
      ? {
          "Cross-Origin-Opener-Policy": "same-origin",
          "Cross-Origin-Embedder-Policy": "require-corp",
        }
      : {};
    if (body === undefined) {
      res.writeHead(404, headers).end("not found");
      return;
    }
    const type =
      path === "/" ? TYPES[".html"] : (TYPES[extname(path)] ?? "application/octet-stream");
    res.writeHead(200, { ...headers, "Content-Type": type, "Content-Length": body.byteLength });
    res.end(body);
  });
  await new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, host, done);
  });
  const url = `http://${host}:${server.address().port}/`;
  const close = () =>
    new Promise((done) => {
      server.closeAllConnections?.();
      server.close(() => done());
      rmSync(work, { recursive: true, force: true });
    });
  return { url, close };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--port");
  const port = at >= 0 ? Number(args[at + 1]) : 8080;
  const { url } = await startWebServer({ port, isolated: !args.includes("--no-isolation") });
  console.log(`peft-ts demo page: ${url} (Ctrl-C to stop)`);
}
