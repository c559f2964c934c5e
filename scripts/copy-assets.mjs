// Copies the files tsc does not emit (the compiled WebAssembly kernels) from src/ to
// dist/, beside the JavaScript that loads them with new URL("./x.wasm", import.meta.url),
// and writes each folder's embedded.js: the same modules in base64, for browsers.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src");
const dist = join(root, "dist");

const embedded = new Map();
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".wasm")) continue;
  const from = join(entry.parentPath ?? entry.path, entry.name);
  const to = join(dist, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  const folder = dirname(to);
  if (!embedded.has(folder)) embedded.set(folder, {});
  embedded.get(folder)[entry.name] = readFileSync(from).toString("base64");
}
for (const [folder, files] of embedded) {
  writeFileSync(join(folder, "embedded.js"), `export const EMBEDDED = ${JSON.stringify(files)};\n`);
  copyFileSync(join(src, relative(dist, folder), "embedded.d.ts"), join(folder, "embedded.d.ts"));
}
