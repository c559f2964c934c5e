import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built command (`npm test` builds first), run as a user would. */
export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

export function runCli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  if (r.error) throw r.error;
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
