import { existsSync, realpathSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ValueError } from "../errors.js";
import { ConfigReader } from "../io/config.js";
import { DirectoryFiles } from "../io/files/directory.js";
import { resolveModelDir } from "../io/model-dir.js";

/** --dtype in every command: "auto" is config.json's torch_dtype, as transformers' torch_dtype="auto". */
export const DTYPES = ["float32", "bfloat16", "float16", "auto"] as const;
export type DTypeChoice = (typeof DTYPES)[number];

/** The real path of p, or of its nearest existing ancestor joined with the rest. */
function realish(p: string): string {
  const abs = resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const parent = dirname(abs);
  return parent === abs ? abs : join(realish(parent), relative(parent, abs));
}

function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === "" || (!r.startsWith("..") && !r.startsWith("/"));
}

/**
 * An output directory must be a directory (or not exist yet) and must not overlap the
 * directories a command reads: writing a merged model into its own base model's folder
 * would overwrite the weights it is made from. Checked before anything is loaded.
 */
export function checkOutputDir(
  command: string,
  out: string,
  inputs: Record<string, string> = {},
): void {
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new ValueError(
      `peft ${command}: --out ${out} is a file; expected a directory to write into`,
    );
  const o = realish(out);
  for (const [flag, dir] of Object.entries(inputs)) {
    const d = realish(dir);
    if (within(o, d) || within(d, o))
      throw new ValueError(
        `peft ${command}: --out ${out} ${o === d ? "is" : within(o, d) ? "is inside" : "contains"} the ${flag} directory ${dir}; choose an output directory of its own`,
      );
  }
}

/**
 * The context a model was trained for (max_position_embeddings, GPT-2's n_positions), and
 * whether it is a hard limit: learned position embeddings have no row past it, while
 * rotary models run beyond it (less well).
 */
export function modelContext(pathOrId: string): { length: number | null; hard: boolean } {
  const config = ConfigReader.fromFiles(new DirectoryFiles(resolveModelDir(pathOrId)));
  const learned = config.raw.model_type === "gpt2";
  for (const key of ["n_positions", "max_position_embeddings"]) {
    const v = config.raw[key];
    if (Number.isSafeInteger(v) && (v as number) > 0) return { length: v as number, hard: learned };
  }
  return { length: null, hard: false };
}
