import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";

/** One command-line option: its parser, its help line and its bounds. */
export interface OptionSpec {
  type: "string" | "number" | "integer" | "boolean" | "list";
  /** What the help line says it does. */
  help: string;
  /** The value's placeholder in help: DIR, FILE, N, X, TEXT. */
  value?: string;
  /** The default as help shows it (the command applies it). */
  default?: string;
  /** The only values accepted. */
  choices?: readonly string[];
  /** For numbers: the smallest value accepted. */
  min?: number;
  required?: boolean;
}

export type ArgSpec = Record<string, OptionSpec>;
export type ParsedArgs = Record<string, string | number | boolean | string[] | undefined>;

/** loadIn4bit -> load-in-4bit, maxSteps -> max-steps. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/([a-z])(\d)/g, "$1-$2");
}

function convert(
  spec: ArgSpec,
  key: string,
  raw: unknown,
  where: string,
): string | number | boolean | string[] {
  const { type, choices, min } = spec[key];
  const flag = `--${kebab(key)}`;
  if (type === "number" || type === "integer") {
    const n = typeof raw === "number" ? raw : raw === "" ? Number.NaN : Number(raw);
    const integer = type === "integer";
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || (min !== undefined && n < min))
      throw new ValueError(
        `${where}: ${flag} expects ${integer ? "an integer" : "a number"}${min !== undefined ? ` >= ${min}` : ""}, got ${JSON.stringify(raw)}`,
      );
    return n;
  }
  if (type === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === undefined) return true;
    if (raw === "false") return false;
    throw new ValueError(`${where}: ${flag} expects true or false, got ${JSON.stringify(raw)}`);
  }
  if (type === "list")
    return Array.isArray(raw)
      ? raw.map(String)
      : String(raw)
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
  const value = String(raw);
  if (choices !== undefined && !choices.includes(value))
    throw new ValueError(
      `${where}: ${flag} must be one of ${choices.join(", ")}, got ${JSON.stringify(raw)}`,
    );
  return value;
}

/** The options every command takes besides its own. */
const COMMON_HELP: [string, string][] = [
  ["--config FILE", "the same settings as a JSON or YAML file (flags win)"],
  ["--help", "print this help"],
];

/** A command's help: its synopsis, then one line per option, all taken from its spec. */
export function formatHelp(synopsis: string, spec: ArgSpec): string {
  const rows: [string, string][] = Object.entries(spec).map(([key, o]) => {
    const value =
      o.type === "boolean"
        ? ""
        : ` ${o.value ?? (o.choices ? o.choices.join("|") : o.type === "list" ? "A,B" : o.type === "string" ? "TEXT" : "N")}`;
    const notes = [
      o.required ? "required" : null,
      o.default !== undefined ? `default: ${o.default}` : null,
    ]
      .filter(Boolean)
      .join(", ");
    return [`--${kebab(key)}${value}`, notes ? `${o.help} (${notes})` : o.help];
  });
  rows.push(...COMMON_HELP);
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
  const lines = rows.map(([f, h]) =>
    f.length + 2 > width ? `  ${f}\n  ${" ".repeat(width)}${h}` : `  ${f.padEnd(width)}${h}`,
  );
  return `${synopsis}\n\noptions:\n${lines.join("\n")}`;
}

/**
 * Parses `--name value`, `--name=value` and bare boolean flags; names are kebab-case on
 * the command line and camelCase in the result. `--config FILE` (JSON or YAML) supplies
 * defaults that explicit flags override. Unknown flags are errors listing the known ones.
 */
export function parseArgs(command: string, argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const byFlag = new Map(Object.keys(spec).map((k) => [kebab(k), k]));
  const out: ParsedArgs = {};
  const positional: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const [flag, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (flag === "config") {
      configFile = inline ?? argv[++i];
      continue;
    }
    const key = byFlag.get(flag);
    if (key === undefined) {
      throw new ValueError(
        `peft ${command}: unknown option --${flag}; options: ${[...byFlag.keys(), "config"].map((f) => `--${f}`).join(", ")}`,
      );
    }
    let value: string | undefined = inline;
    if (value === undefined && spec[key].type !== "boolean") {
      value = argv[++i];
      if (value === undefined) throw new ValueError(`peft ${command}: --${flag} needs a value`);
    }
    out[key] = convert(spec, key, value, `peft ${command}`);
  }
  if (configFile !== undefined) {
    for (const [k, v] of Object.entries(readConfigFile(configFile))) {
      const key = byFlag.get(k) ?? byFlag.get(kebab(k)) ?? byFlag.get(k.replace(/_/g, "-"));
      if (key === undefined)
        throw new FileFormatError(
          configFile,
          `unknown setting "${k}"; settings: ${[...byFlag.keys()].join(", ")}`,
        );
      if (out[key] === undefined) out[key] = convert(spec, key, v, configFile);
    }
  }
  for (const [key, o] of Object.entries(spec))
    if (o.required && (out[key] === undefined || out[key] === ""))
      throw new ValueError(`peft ${command}: --${kebab(key)} is required`);
  out._ = positional;
  return out;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new FileNotFoundError(path, "config file not found");
  }
  let value: unknown;
  try {
    value = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new FileFormatError(path, `cannot parse: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new FileFormatError(path, "expected a mapping of settings");
  return value as Record<string, unknown>;
}

export function required(args: ParsedArgs, key: string, command: string): string {
  const v = args[key];
  if (v === undefined || v === "")
    throw new ValueError(`peft ${command}: --${kebab(key)} is required`);
  return String(v);
}
