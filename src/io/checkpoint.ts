import { FileFormatError, FileNotFoundError } from "../errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { readJsonIn } from "./config.js";
import { filesIn } from "./files/directory.js";
import type { ModelFiles } from "./files/model-files.js";
import type { TensorEntry } from "./safetensors/format.js";
import { SafetensorsFile } from "./safetensors/reader.js";

/** A model's weights file, and the index of its shards when it has several. */
export const SINGLE = "model.safetensors";
export const INDEX = "model.safetensors.index.json";

/**
 * The weights of a model directory: one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json`. Tensors are read one at a time, on demand.
 */
export class Checkpoint {
  private constructor(
    /** Where the weights are (a directory, a URL), for messages. */
    readonly dir: string,
    private readonly files: Map<string, SafetensorsFile>,
    private readonly where: Map<string, SafetensorsFile>,
  ) {}

  /** The weights in a directory, or in a model's files (on disk or in memory). */
  static open(dirOrFiles: string | ModelFiles): Checkpoint {
    const files = filesIn(dirOrFiles);
    const dir = files.location;
    if (files.has(INDEX)) return Checkpoint.openSharded(files);
    if (files.has(SINGLE)) {
      const file = SafetensorsFile.openIn(files, SINGLE);
      return new Checkpoint(
        dir,
        new Map([[SINGLE, file]]),
        new Map(file.keys().map((k) => [k, file])),
      );
    }
    const present = files.names();
    const legacy = present.filter(
      (f) => f.endsWith(".bin") || f.endsWith(".pt") || f.endsWith(".pth"),
    );
    throw new FileNotFoundError(
      dir,
      legacy.length > 0
        ? `no safetensors weights, only ${legacy.join(", ")}; peft-ts reads safetensors only (convert with transformers' save_pretrained(safe_serialization=True))`
        : `no model weights: expected ${SINGLE} or ${INDEX} (found: ${present.join(", ") || "nothing"})`,
    );
  }

  private static openSharded(source: ModelFiles): Checkpoint {
    const indexPath = source.describe(INDEX);
    const json = readJsonIn(source, INDEX) as { weight_map?: unknown };
    const map = json?.weight_map;
    if (typeof map !== "object" || map === null || Array.isArray(map)) {
      throw new FileFormatError(
        indexPath,
        'expected a "weight_map" object from tensor names to shard files',
      );
    }
    const files = new Map<string, SafetensorsFile>();
    const where = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shard] of Object.entries(map)) {
        if (
          typeof shard !== "string" ||
          shard.includes("/") ||
          shard.includes("\\") ||
          shard === "." ||
          shard === ".." ||
          shard === ""
        ) {
          throw new FileFormatError(
            indexPath,
            `weight_map["${name}"] should be a shard file name, found ${JSON.stringify(shard)}`,
          );
        }
        let file = files.get(shard);
        if (file === undefined) {
          file = SafetensorsFile.openIn(source, shard);
          files.set(shard, file);
        }
        if (!file.has(name)) {
          throw new FileFormatError(
            file.path,
            `the index places tensor "${name}" in this shard, but the shard does not contain it`,
          );
        }
        where.set(name, file);
      }
    } catch (e) {
      for (const f of files.values()) f.close();
      throw e;
    }
    return new Checkpoint(source.location, files, where);
  }

  keys(): string[] {
    return [...this.where.keys()];
  }

  /** Bytes of tensor data in all files. */
  get dataBytes(): number {
    let n = 0;
    for (const [name, f] of this.where) {
      const e = f.entry(name);
      n += e.end - e.begin;
    }
    return n;
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  entry(name: string): Readonly<TensorEntry> {
    return this.file(name).entry(name);
  }

  /** One tensor; see SafetensorsFile.load for `scratch`. */
  load(name: string, scratch?: ArrayBuffer): Tensor {
    return this.file(name).load(name, scratch);
  }

  private file(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (f === undefined)
      throw new FileFormatError(this.dir, `the checkpoint has no tensor named "${name}"`);
    return f;
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }
}
