#!/usr/bin/env -S node --no-concurrent-marking
import { readFileSync } from "node:fs";
import { backendInfo } from "../backend/info.js";
import { PeftError, ValueError } from "../errors.js";
import { DEMO_HELP, demo } from "./commands/demo.js";
import { GENERATE_HELP, generateCommand } from "./commands/generate.js";
import { inspect } from "./commands/inspect.js";
import { MERGE_HELP, merge } from "./commands/merge.js";
import { TRAIN_HELP, train } from "./commands/train.js";

interface Command {
  summary: string;
  usage: string;
  run: (args: string[]) => unknown;
}

const COMMANDS: Record<string, Command> = {
  demo: {
    summary: "fine-tune the embedded tiny model and show it learning",
    usage: DEMO_HELP,
    run: (a) => demo(a),
  },
  train: {
    summary: "train a LoRA, DoRA or VeRA adapter on a JSONL dataset",
    usage: TRAIN_HELP,
    run: train,
  },
  generate: {
    summary: "generate text from a model, optionally with an adapter",
    usage: GENERATE_HELP,
    run: (a) => generateCommand(a),
  },
  merge: {
    summary: "merge an adapter into its base model and write a model directory",
    usage: MERGE_HELP,
    run: merge,
  },
  inspect: {
    summary: "describe a model or adapter directory",
    usage: "peft inspect DIR",
    run: (a) => inspect(a),
  },
  info: {
    summary: "print the version, the active backend and the runtime",
    usage: "peft info",
    run: info,
  },
  help: {
    summary: "print this help, or a command's options (peft help train)",
    usage: "peft help [command]",
    run: (a) => help(a[0]),
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return String(pkg.version);
}

function info(): void {
  const i = backendInfo();
  const f = i.cpu.features;
  const yes = (b: boolean) => (b ? "yes" : "no");
  console.log(
    [
      `peft-ts ${version()}`,
      `backend: ${i.backend} (available: ${i.available.join(", ")}; choose with PEFT_BACKEND)`,
      `threads: ${i.threads} of ${i.cpu.cores} cores`,
      `cpu: ${i.cpu.model}`,
      f === null
        ? "cpu features: unknown (no /proc/cpuinfo)"
        : `cpu features: AVX2 ${yes(f.avx2)}, AVX-512 ${yes(f.avx512f)}, AVX512-BF16 ${yes(f.avx512bf16)}, AVX512-FP16 ${yes(f.avx512fp16)}, AMX-BF16 ${yes(f.amxBf16)}`,
      i.onednnIsa === null
        ? "oneDNN: not loaded (install libdnnl-dev, then npm rebuild)"
        : `oneDNN: ${i.onednnIsa}${i.onednnBf16 ? "" : " (bfloat16 products widened to float32)"}`,
      `WebAssembly: ${i.wasm ?? "no SIMD support in this engine"}`,
      `node: ${process.version} on ${process.platform}-${process.arch}`,
    ].join("\n"),
  );
}

function help(command?: string): void {
  const c = command === undefined ? undefined : COMMANDS[command];
  if (c !== undefined) {
    console.log(c.usage);
    return;
  }
  if (command !== undefined)
    throw new ValueError(
      `peft help: unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(", ")}`,
    );
  console.log("usage: peft <command> [options]\n\ncommands:");
  for (const [name, cmd] of Object.entries(COMMANDS))
    console.log(`  ${name.padEnd(10)} ${cmd.summary}`);
  console.log(
    "\nevery option of a command: peft help <command> (or peft <command> --help)\npeft --version prints the version",
  );
}

function main(argv: string[]): number {
  const [command = "help", ...rest] = argv;
  if (command === "--version" || command === "-v" || command === "version") {
    console.log(version());
    return 0;
  }
  const entry = COMMANDS[command === "--help" || command === "-h" ? "help" : command];
  if (entry === undefined) {
    console.error(
      `peft: unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(", ")}`,
    );
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(entry.usage);
    return 0;
  }
  try {
    entry.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof PeftError) {
      console.error(e.message.startsWith("peft ") ? e.message : `peft ${command}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
