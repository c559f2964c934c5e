import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { FileNotFoundError } from "../../errors.js";
import { Checkpoint } from "../../io/checkpoint.js";
import { ConfigReader, readJsonFile } from "../../io/config.js";
import { SafetensorsFile } from "../../io/safetensors/reader.js";

function countByDtype(entries: { dtype: string; shape: number[] }[]): {
  params: number;
  dtypes: string;
} {
  const by = new Map<string, number>();
  let params = 0;
  for (const e of entries) {
    const n = e.shape.reduce((x, y) => x * y, 1);
    params += n;
    by.set(e.dtype, (by.get(e.dtype) ?? 0) + n);
  }
  return {
    params,
    dtypes: [...by].map(([d, n]) => `${d} ${n.toLocaleString("en-US")}`).join(", "),
  };
}

function describeAdapter(dir: string, lines: string[], baseParams: number | null): void {
  const cfg = readJsonFile(join(dir, "adapter_config.json")) as Record<string, unknown>;
  const file = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
  const { params, dtypes } = countByDtype(file.keys().map((k) => file.entry(k)));
  const targets = Array.isArray(cfg.target_modules)
    ? [...cfg.target_modules].sort().join(", ")
    : String(cfg.target_modules);
  lines.push(
    `adapter ${dir}: ${cfg.peft_type}, r ${cfg.r}${cfg.lora_alpha !== undefined ? `, alpha ${cfg.lora_alpha}` : ""}${cfg.use_dora ? ", DoRA" : ""}${cfg.use_rslora ? ", rsLoRA" : ""}`,
  );
  lines.push(`  targets: ${targets}`);
  lines.push(
    `  tensors: ${file.keys().length}, parameters: ${params.toLocaleString("en-US")} (${dtypes})`,
  );
  if (baseParams !== null)
    lines.push(`  trainable share of the base model: ${((100 * params) / baseParams).toFixed(4)}%`);
  file.close();
}

/** A description of a model or adapter directory: architecture, sizes, dtypes, adapters. */
export function inspect(argv: string[], log: (line: string) => void = console.log): void {
  const dir = argv[0];
  if (dir === undefined) throw new FileNotFoundError("(none)", "peft inspect needs a directory");
  if (!existsSync(dir)) throw new FileNotFoundError(dir, "no such directory");
  const lines: string[] = [];
  let baseParams: number | null = null;
  if (existsSync(join(dir, "config.json"))) {
    const c = ConfigReader.fromFile(join(dir, "config.json"));
    const ckpt = Checkpoint.open(dir);
    const { params, dtypes } = countByDtype(ckpt.keys().map((k) => ckpt.entry(k)));
    baseParams = params;
    const arch = Array.isArray(c.raw.architectures) ? c.raw.architectures.join(", ") : "?";
    lines.push(`model ${dir}: ${arch} (model_type ${c.raw.model_type})`);
    const size = [
      "hidden_size",
      "n_embd",
      "num_hidden_layers",
      "n_layer",
      "num_attention_heads",
      "n_head",
      "num_key_value_heads",
      "vocab_size",
    ]
      .filter((k) => c.has(k))
      .map((k) => `${k} ${c.raw[k]}`)
      .join(", ");
    lines.push(`  ${size}`);
    lines.push(
      `  parameters: ${params.toLocaleString("en-US")} (${dtypes}), ${ckpt.keys().length} tensors`,
    );
    ckpt.close();
  }
  if (existsSync(join(dir, "adapter_config.json"))) describeAdapter(dir, lines, baseParams);
  for (const sub of readdirSync(dir)) {
    const p = join(dir, sub);
    if (statSync(p).isDirectory() && existsSync(join(p, "adapter_config.json")))
      describeAdapter(p, lines, baseParams);
  }
  if (lines.length === 0)
    throw new FileNotFoundError(
      dir,
      "neither a model directory (config.json) nor an adapter directory (adapter_config.json)",
    );
  for (const l of lines) log(l);
}
