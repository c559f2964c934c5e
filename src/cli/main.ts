#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { availableBackends, getBackend } from "../backend/registry.js";
import { PeftError } from "../errors.js";

const COMMANDS: Record<string, { summary: string; run: (args: string[]) => void }> = {
  info: { summary: "print the version, the active backend and the runtime", run: info },
  help: { summary: "print this help", run: () => help() },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return String(pkg.version);
}

function info(): void {
  const lines = [
    `peft-ts ${version()}`,
    `backend: ${getBackend().name} (available: ${availableBackends().join(", ")}; choose with PEFT_BACKEND)`,
    `node: ${process.version} on ${process.platform}-${process.arch}`,
  ];
  console.log(lines.join("\n"));
}

function help(): void {
  console.log("usage: peft <command> [options]\n\ncommands:");
  for (const [name, c] of Object.entries(COMMANDS))
    console.log(`  ${name.padEnd(10)} ${c.summary}`);
}

function main(argv: string[]): number {
  const [command = "help", ...rest] = argv;
  const entry = COMMANDS[command === "--help" || command === "-h" ? "help" : command];
  if (entry === undefined) {
    console.error(
      `peft: unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(", ")}`,
    );
    return 2;
  }
  try {
    entry.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof PeftError) {
      console.error(`peft ${command}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
