import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built command (`npm test` builds first), run as a user would. */
export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

export function runCli(args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    return {
      status: 0,
      stdout: execFileSync(process.execPath, [CLI, ...args], { encoding: "utf8", stdio: "pipe" }),
      stderr: "",
    };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, stdout: String(err.stdout), stderr: String(err.stderr) };
  }
}
