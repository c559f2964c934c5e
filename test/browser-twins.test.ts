import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

// Modules that need Node (its file system, addons, worker_threads) have a browser build
// beside them, x.browser.ts, which package.json's "browser" field puts in their place for
// bundlers. Each must keep its Node twin's exports, or a bundle breaks where Node works.
const twins = readdirSync(`${root}src`, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith(".browser.ts"))
  .sort();

beforeAll(() => {
  if (!existsSync(`${root}dist/index.js`))
    throw new Error("dist/ is missing: run `npm run build` first");
});

describe("the browser builds of Node-only modules", () => {
  it("are exactly what package.json's browser field maps", () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as {
      browser: Record<string, string>;
    };
    expect(twins.length).toBeGreaterThan(0);
    expect(pkg.browser).toEqual(
      Object.fromEntries(
        twins.map((t) => [
          `./dist/${t.replace(/\.browser\.ts$/, ".js")}`,
          `./dist/${t.replace(/\.ts$/, ".js")}`,
        ]),
      ),
    );
  });

  it.each(twins)("%s exports what its Node module exports", async (twin) => {
    const load = (f: string) => import(pathToFileURL(`${root}dist/${f}`).href);
    const browser = await load(twin.replace(/\.ts$/, ".js"));
    const node = await load(twin.replace(/\.browser\.ts$/, ".js"));
    expect(Object.keys(browser).sort()).toEqual(Object.keys(node).sort());
  });
});
