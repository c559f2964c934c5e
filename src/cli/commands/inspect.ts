import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { FileNotFoundError } from "../../errors.js";
import { Checkpoint } from "../../io/checkpoint.js";
import { ConfigReader } from "../../io/config.js";
import { DirectoryFiles } from "../../io/files/directory.js";
import { readJsonFile } from "../../io/read-file.js";
import { SafetensorsFile } from "../../io/safetensors/reader.js";
import type { DecoderConfig } from "../../models/decoder/config.js";
import { DECODER_FAMILIES, parseDecoderConfig } from "../../models/decoder/families.js";

interface Entry {
  dtype: string;
  shape: number[];
}

const QUANT_STATE = /\.quant_state\.bitsandbytes__(nf4|fp4)$/;
/** Tensors that describe a 4-bit weight instead of holding parameters. */
const QUANT_PARTS =
  /\.(absmax|quant_map|nested_absmax|nested_quant_map)$|\.quant_state\.bitsandbytes__/;

/**
 * Parameters by dtype. A 4-bit weight (bitsandbytes' layout) counts the elements its
 * quant_state records, under its 4-bit type; its packed bytes and statistics are state,
 * not parameters.
 */
function countByDtype(
  names: string[],
  entry: (name: string) => Entry,
  read: (name: string) => Uint8Array,
): { params: number; dtypes: string; stateBytes: number } {
  const by = new Map<string, number>();
  let params = 0;
  let stateBytes = 0;
  const packed = new Set<string>();
  const add = (dtype: string, n: number) => {
    params += n;
    by.set(dtype, (by.get(dtype) ?? 0) + n);
  };
  for (const name of names) {
    const m = QUANT_STATE.exec(name);
    if (m === null) continue;
    const weight = name.slice(0, m.index);
    let state: { shape?: unknown };
    try {
      state = JSON.parse(new TextDecoder().decode(read(name)));
    } catch {
      state = {};
    }
    const shape = Array.isArray(state.shape) ? (state.shape as number[]) : [];
    add(
      m[1],
      shape.reduce((x, y) => x * y, 1),
    );
    packed.add(weight);
  }
  for (const name of names) {
    const e = entry(name);
    const n = e.shape.reduce((x, y) => x * y, 1);
    if (packed.has(name) || QUANT_PARTS.test(name)) stateBytes += n * bytesOf(e.dtype);
    else add(e.dtype, n);
  }
  return {
    params,
    stateBytes,
    dtypes: [...by].map(([d, n]) => `${d} ${n.toLocaleString("en-US")}`).join(", "),
  };
}

function bytesOf(dtype: string): number {
  return /64/.test(dtype) ? 8 : /32/.test(dtype) ? 4 : /16/.test(dtype) ? 2 : 1;
}

function describeAdapter(dir: string, lines: string[], baseParams: number | null): void {
  const cfg = readJsonFile(join(dir, "adapter_config.json")) as Record<string, unknown>;
  const file = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
  const keys = file.keys();
  const { params, dtypes } = countByDtype(
    keys,
    (k) => file.entry(k),
    (k) => file.load(k).data as Uint8Array,
  );
  // VeRA's shared projections, when saved, are frozen random matrices: only λ is trained.
  const frozen = keys
    .filter((k) => /\.vera_[AB]$|^vera_[AB]$/.test(k))
    .reduce((n, k) => n + file.entry(k).shape.reduce((x, y) => x * y, 1), 0);
  const targets = Array.isArray(cfg.target_modules)
    ? [...cfg.target_modules].sort().join(", ")
    : String(cfg.target_modules);
  // AdaLoRA ignores r: its ranks start at init_r and its rank_pattern says which were kept.
  const rank =
    cfg.peft_type === "ADALORA"
      ? `, init_r ${cfg.init_r}, target_r ${cfg.target_r}`
      : cfg.r !== undefined
        ? `, r ${cfg.r}`
        : cfg.num_virtual_tokens !== undefined
          ? `, ${cfg.num_virtual_tokens} virtual tokens`
          : "";
  lines.push(
    `adapter ${dir}: ${cfg.peft_type}${rank}${cfg.lora_alpha !== undefined ? `, alpha ${cfg.lora_alpha}` : ""}${cfg.use_dora ? ", DoRA" : ""}${cfg.use_rslora ? ", rsLoRA" : ""}`,
  );
  if (cfg.target_modules !== undefined) lines.push(`  targets: ${targets}`);
  lines.push(
    `  tensors: ${keys.length}, parameters: ${params.toLocaleString("en-US")} (${dtypes})`,
  );
  const trainable = params - frozen;
  if (cfg.peft_type === "ADALORA" && cfg.rank_pattern != null) {
    const masks = Object.values(cfg.rank_pattern as Record<string, boolean[]>);
    const kept = masks.map((m) => m.filter(Boolean).length);
    lines.push(
      `  ranks kept: ${kept.reduce((a, b) => a + b, 0)} of ${masks.reduce((n, m) => n + m.length, 0)} (per module ${Math.min(...kept)} to ${Math.max(...kept)})`,
    );
  }
  if (cfg.peft_type === "VERA")
    lines.push(
      `  trainable: ${trainable.toLocaleString("en-US")} (vera_lambda_b, vera_lambda_d); frozen shared projections: ${frozen > 0 ? `${frozen.toLocaleString("en-US")} (vera_A, vera_B, saved)` : `regenerated from projection_prng_key ${cfg.projection_prng_key}`}`,
    );
  if (baseParams !== null)
    lines.push(
      `  trainable share of the base model: ${((100 * trainable) / baseParams).toFixed(4)}%`,
    );
  file.close();
}

/** The decoder's family switches that are on, or why the config cannot be loaded. */
function describeDecoder(c: ConfigReader): string | null {
  if (!Object.hasOwn(DECODER_FAMILIES, String(c.raw.model_type))) return null;
  let d: DecoderConfig;
  try {
    d = parseDecoderConfig(c);
  } catch (e) {
    return `cannot be loaded: ${(e as Error).message}`;
  }
  const windows = d.slidingWindows.flatMap((w, i) => (w === null ? [] : [`${i}`]));
  const parts = [
    `rope ${d.rope.scaling.type} (theta ${d.rope.theta})`,
    windows.length > 0 &&
      `sliding window ${d.slidingWindows.find((w) => w !== null)} on layers ${windows.join(",")}`,
    d.attnLogitSoftcap !== null && `attention softcap ${d.attnLogitSoftcap}`,
    d.finalLogitSoftcap !== null && `final softcap ${d.finalLogitSoftcap}`,
    d.fusedProjections && "fused qkv_proj and gate_up_proj",
    d.normPlusOne && "norms x*(1+w)",
    d.sandwichNorms && "norms around attention and MLP",
    d.scaleEmbeddings && "embeddings x sqrt(hidden)",
    d.tieWordEmbeddings && "tied lm_head",
  ];
  return `decoder: ${parts.filter(Boolean).join(", ")}`;
}

/** A description of a model or adapter directory: architecture, sizes, dtypes, adapters. */
export function inspect(argv: string[], log: (line: string) => void = console.log): void {
  const dir = argv[0];
  if (dir === undefined) throw new FileNotFoundError("(none)", "peft inspect needs a directory");
  if (!existsSync(dir)) throw new FileNotFoundError(dir, "no such directory");
  const lines: string[] = [];
  let baseParams: number | null = null;
  if (existsSync(join(dir, "config.json"))) {
    const c = ConfigReader.fromFiles(new DirectoryFiles(dir));
    const ckpt = Checkpoint.open(dir);
    const { params, dtypes, stateBytes } = countByDtype(
      ckpt.keys(),
      (k) => ckpt.entry(k),
      (k) => ckpt.load(k).data as Uint8Array,
    );
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
    const decoder = describeDecoder(c);
    if (decoder !== null) lines.push(`  ${decoder}`);
    lines.push(
      `  parameters: ${params.toLocaleString("en-US")} (${dtypes}), ${ckpt.keys().length} tensors${stateBytes > 0 ? `; 4-bit packing and statistics: ${stateBytes.toLocaleString("en-US")} bytes` : ""}`,
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
