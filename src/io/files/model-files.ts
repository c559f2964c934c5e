import { FileNotFoundError, ValueError } from "../../errors.js";
import { type ByteSource, bufferSource } from "./byte-source.js";

/**
 * The files of one model or adapter folder (config.json, model.safetensors, tokenizer.json,
 * ...), read synchronously by name. In Node a directory on disk (DirectoryFiles); anywhere,
 * bytes already in memory (MemoryFiles), which is how files fetched over HTTP or picked by
 * a browser's user arrive (fetchModelFiles, filesFromBlobs).
 */
export interface ModelFiles {
  /** Where the files come from, for messages and `base_model_name_or_path`: a directory, a URL. */
  readonly location: string;
  /** How one file is named in messages: its path or URL. */
  describe(name: string): string;
  has(name: string): boolean;
  /** The names of the files present, for messages about missing ones. */
  names(): string[];
  /** A whole file; a missing one is a FileNotFoundError that says `what` it is. */
  read(name: string, what?: string): Uint8Array;
  /** Random access to one file, for safetensors (tensors are read one at a time). */
  open(name: string, what?: string): ByteSource;
}

/**
 * Files by their path inside a folder, subfolders written with "/" ("adapter_config.json",
 * "other/adapter_config.json"): what savePretrained() and Trainer.checkpointFiles() give.
 */
export type FolderFiles = Record<string, Uint8Array>;

/** Plain file names only: a folder's files sit side by side, as on the Hugging Face hub. */
function checkName(name: string): string {
  const plain = name.startsWith("./") ? name.slice(2) : name;
  if (plain === "" || plain === "." || plain === ".." || /[/\\]/.test(plain))
    throw new ValueError(
      `a model file's name should be a plain file name, got ${JSON.stringify(name)}`,
    );
  return plain;
}

/** Files held in memory, by name. */
export class MemoryFiles implements ModelFiles {
  private readonly files = new Map<string, Uint8Array>();
  readonly location: string;

  /**
   * `files` maps plain file names to their bytes; `location` names where they came from
   * (a URL, a hub id) in messages and in a saved adapter's base_model_name_or_path.
   */
  constructor(
    files: Iterable<readonly [string, Uint8Array]> | Record<string, Uint8Array>,
    options: { location?: string } = {},
  ) {
    const entries = Symbol.iterator in files ? files : Object.entries(files);
    for (const [name, bytes] of entries) {
      if (!(bytes instanceof Uint8Array))
        throw new ValueError(
          `MemoryFiles: "${name}" should be a Uint8Array, found ${typeof bytes}`,
        );
      this.files.set(checkName(name), bytes);
    }
    this.location = options.location ?? "<memory>";
  }

  /**
   * The files of one subfolder ("" for the top) of files by path, such as a second
   * adapter's in what savePretrained() gives.
   */
  static inFolder(
    files: FolderFiles,
    folder: string,
    options: { location?: string } = {},
  ): MemoryFiles {
    const prefix = folder === "" ? "" : `${folder.replace(/\/+$/, "")}/`;
    const inside = Object.entries(files).flatMap(([path, bytes]) =>
      path.startsWith(prefix) && !path.slice(prefix.length).includes("/")
        ? [[path.slice(prefix.length), bytes] as const]
        : [],
    );
    const location = options.location ?? "<memory>";
    return new MemoryFiles(inside, {
      location: folder === "" ? location : `${location}/${folder}`,
    });
  }

  describe(name: string): string {
    return this.location.endsWith("/") ? `${this.location}${name}` : `${this.location}/${name}`;
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  names(): string[] {
    return [...this.files.keys()];
  }

  read(name: string, what = "file"): Uint8Array {
    const bytes = this.files.get(name);
    if (bytes === undefined) throw new FileNotFoundError(this.describe(name), `${what} not found`);
    return bytes;
  }

  open(name: string, what = "file"): ByteSource {
    return bufferSource(this.read(name, what));
  }
}
