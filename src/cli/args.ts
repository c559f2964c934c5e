import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { FileFormatError, FileNotFoundError, ValueError } from "../errors.js";

export type ArgSpec = Record<string, "string" | "number" | "boolean" | "list">;
export type ParsedArgs = Record<string, string | number | boolean | string[] | undefined>;

/** loadIn4bit -> load-in-4bit, maxSteps -> max-steps. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/([a-z])(\d)/g, "$1-$2");
}

function convert(
  spec: ArgSpec,
  key: string,
  raw: unknown,
  where: string,
): string | number | boolean | string[] {
  const kind = spec[key];
  if (kind === "number") {
    const n = typeof raw === "number" ? raw : Number(raw);
    if (!Number.isFinite(n))
      throw new ValueError(
        `${where}: --${kebab(key)} expects a number, got ${JSON.stringify(raw)}`,
      );
    return n;
  }
  if (kind === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === undefined) return true;
    if (raw === "false") return false;
    throw new ValueError(
      `${where}: --${kebab(key)} expects true or false, got ${JSON.stringify(raw)}`,
    );
  }
  if (kind === "list")
    return Array.isArray(raw)
      ? raw.map(String)
      : String(raw)
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
  return String(raw);
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
    if (value === undefined && spec[key] !== "boolean") {
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
