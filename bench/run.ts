import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

// `npm run bench -- <name> [args...]` runs bench/<name>.ts.
// Files here that are shared code, not benches.
const HELPERS = ["run.ts", "util.ts", "lora-step.ts", "gemm-floor.ts"];
const dir = fileURLToPath(new URL(".", import.meta.url));
const available = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && !HELPERS.includes(f))
  .map((f) => f.slice(0, -3));
const [name, ...args] = process.argv.slice(2);
if (name === undefined || !available.includes(name)) {
  console.error(
    `usage: npm run bench -- <name> [args]\navailable benches: ${available.join(", ")}`,
  );
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { main(args: string[]): Promise<void> | void };
await mod.main(args);
