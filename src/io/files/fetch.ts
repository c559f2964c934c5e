import { FileNotFoundError, PeftError, ValueError } from "../../errors.js";
import { INDEX, SINGLE } from "../checkpoint.js";
import { readJsonIn } from "../config.js";
import { concatBytes } from "./byte-source.js";
import { MemoryFiles } from "./model-files.js";

/** How far a download has come, reported after every chunk a response delivers. */
export interface FetchProgress {
  file: string;
  loaded: number;
  /** From Content-Length; null when the server does not send it or compresses the response. */
  total: number | null;
}

export interface FetchFilesOptions {
  /** Files that may be missing (HTTP 404): left out instead of failing. */
  optional?: readonly string[];
  onProgress?: (progress: FetchProgress) => void;
  /** The fetch to use; default the global one. */
  fetch?: typeof fetch;
}

// The files a model folder may carry beside its weights, read when present.
const MODEL_EXTRAS = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

function urlOf(base: string | URL, name: string): string {
  const dir = String(base).endsWith("/") ? String(base) : `${base}/`;
  return new URL(name, dir).href;
}

async function fetchOne(
  base: string | URL,
  name: string,
  optional: boolean,
  options: FetchFilesOptions,
): Promise<Uint8Array | null> {
  const url = urlOf(base, name);
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url);
  } catch (e) {
    throw new PeftError("E_IO", `${url}: the request failed (${(e as Error).message})`);
  }
  if (response.status === 404) {
    if (optional) return null;
    throw new FileNotFoundError(url, "not found (HTTP 404)");
  }
  if (!response.ok)
    throw new PeftError("E_IO", `${url}: HTTP ${response.status} ${response.statusText}`.trim());
  // A compressed response's Content-Length counts the compressed bytes, not those read.
  const encoding = response.headers.get("content-encoding");
  const length = Number(response.headers.get("content-length"));
  const plain = encoding === null || encoding === "identity";
  const total = plain && Number.isFinite(length) && length > 0 ? length : null;
  if (response.body === null) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    options.onProgress?.({ file: name, loaded, total });
  }
  if (total !== null && loaded !== total)
    throw new PeftError(
      "E_IO",
      `${url}: expected ${total} bytes (Content-Length), received ${loaded}`,
    );
  return concatBytes(chunks);
}

/** Fetches the named files under `base` (a folder URL) into memory. */
export async function fetchFiles(
  base: string | URL,
  names: readonly string[],
  options: FetchFilesOptions = {},
): Promise<MemoryFiles> {
  const optional = new Set(options.optional ?? []);
  const files: [string, Uint8Array][] = [];
  for (const name of new Set([...names, ...optional])) {
    const bytes = await fetchOne(base, name, optional.has(name), options);
    if (bytes !== null) files.push([name, bytes]);
  }
  return new MemoryFiles(files, { location: String(base).replace(/\/+$/, "") });
}

/**
 * Fetches a model folder (as the Hugging Face hub lays it out) into memory, for
 * fromPretrained and Tokenizer.fromPretrained: config.json, the weights
 * (model.safetensors, or the shards model.safetensors.index.json lists), and the
 * tokenizer and generation files when present. The server must allow the page's origin
 * (CORS) when it is another one.
 */
export async function fetchModelFiles(
  base: string | URL,
  options: Omit<FetchFilesOptions, "optional"> = {},
): Promise<MemoryFiles> {
  // The single weights file first: a sharded model is the rarer case, and every missing
  // file costs a request (and a line in a browser's console).
  const parts = [await fetchFiles(base, ["config.json"], { ...options, optional: [SINGLE] })];
  const weights: string[] = [];
  if (!parts[0]!.has(SINGLE)) {
    const indexed = await fetchFiles(base, [INDEX], options);
    const index = readJsonIn(indexed, INDEX) as { weight_map?: unknown };
    const map = index?.weight_map;
    // Checkpoint.open validates the map fully; here only what the download needs.
    const shards =
      typeof map === "object" && map !== null ? Object.values(map as Record<string, unknown>) : [];
    weights.push(...new Set(shards.filter((s): s is string => typeof s === "string")));
    parts.push(indexed);
  }
  parts.push(
    await fetchFiles(base, [...weights, ...MODEL_EXTRAS], { ...options, optional: MODEL_EXTRAS }),
  );
  const all = new Map<string, Uint8Array>();
  for (const f of parts) for (const n of f.names()) all.set(n, f.read(n));
  return new MemoryFiles(all, { location: parts[0]!.location });
}

/** A Blob with the name it had where the user picked it (a browser File). */
export interface NamedBlob extends Blob {
  readonly name: string;
  /** Set for files picked as a folder (`<input webkitdirectory>`): "folder/file". */
  readonly webkitRelativePath?: string;
}

/**
 * Reads files the user picked (an `<input type="file" multiple>` or a dropped folder) into
 * memory, named by their file names. A folder's files must sit directly in it.
 */
export async function filesFromBlobs(
  blobs: Iterable<NamedBlob> | Record<string, Blob>,
  options: { location?: string } = {},
): Promise<MemoryFiles> {
  const picked = Symbol.iterator in blobs ? [...(blobs as Iterable<NamedBlob>)] : null;
  const entries: [string, Blob][] =
    picked?.map((b) => {
      if (typeof b.name !== "string" || b.name === "")
        throw new ValueError(
          "filesFromBlobs: every Blob needs a name (pass File objects, or a record of names to Blobs)",
        );
      return [b.name, b];
    }) ?? Object.entries(blobs);
  const seen = new Set<string>();
  for (const [name] of entries) {
    if (seen.has(name)) throw new ValueError(`filesFromBlobs: two files are named "${name}"`);
    seen.add(name);
  }
  const files = await Promise.all(
    entries.map(async ([name, b]) => [name, new Uint8Array(await b.arrayBuffer())] as const),
  );
  const folder = picked?.[0]?.webkitRelativePath?.split("/")[0] || undefined;
  return new MemoryFiles(files, { location: options.location ?? folder ?? "<picked files>" });
}
