import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath } from "../../../test/helpers/fixtures.js";
import { FileNotFoundError, PeftError, ValueError } from "../../errors.js";
import { AutoModelForCausalLM } from "../../models/auto.js";
import { modelNameOrPath } from "../../models/name-or-path.js";
import { Tensor } from "../../tensor/tensor.js";
import { SafetensorsFile } from "../safetensors/reader.js";
import { serializeSafetensors } from "../safetensors/writer.js";
import { Tokenizer } from "../tokenizer.js";
import { concatBytes } from "./byte-source.js";
import { DirectoryFiles } from "./directory.js";
import { type FetchProgress, fetchModelFiles, filesFromBlobs } from "./fetch.js";
import { MemoryFiles, type ModelFiles } from "./model-files.js";

const DIR = fixturePath("models/tiny-gemma");
const onDisk = () =>
  new Map<string, Uint8Array>(
    readdirSync(DIR).map((name) => [name, new Uint8Array(readFileSync(join(DIR, name)))]),
  );

const INPUT = Tensor.from([[2, 17, 33, 5, 61, 9]]);

/** The fixture with its weights in two shards and an index, as large models are saved. */
function sharded(): Map<string, Uint8Array> {
  const files = onDisk();
  const all = SafetensorsFile.fromBytes(files.get("model.safetensors")!).loadAll();
  files.delete("model.safetensors");
  const names = [...all.keys()];
  const weightMap: Record<string, string> = {};
  for (const [i, part] of [names.slice(0, 3), names.slice(3)].entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    files.set(file, concatBytes(serializeSafetensors(new Map(part.map((k) => [k, all.get(k)!])))));
    for (const k of part) weightMap[k] = file;
  }
  const index = JSON.stringify({ weight_map: weightMap });
  files.set("model.safetensors.index.json", new TextEncoder().encode(index));
  return files;
}

/** What a model and tokenizer loaded from `files` compute, to compare with the directory's. */
function outcome(files: string | ModelFiles) {
  const model = AutoModelForCausalLM.fromPretrained(files);
  const { logits } = model.forward({ inputIds: INPUT });
  const tokenizer = Tokenizer.fromPretrained(files);
  return {
    logits: Array.from(logits.toFlatNumbers()),
    generation: model.generationConfig,
    ids: tokenizer.encode("hello world, again"),
  };
}

describe("a model's files in memory", () => {
  let fromDirectory: ReturnType<typeof outcome>;
  beforeAll(() => {
    fromDirectory = outcome(DIR);
  });

  it("load the same model, generation defaults and tokenizer as the directory", () => {
    const files = new MemoryFiles(onDisk(), { location: "HuggingFaceTB/tiny-gemma" });
    expect(outcome(files)).toEqual(fromDirectory);
    expect(outcome(new DirectoryFiles(DIR))).toEqual(fromDirectory);
    // The location stands where a directory would: in a saved adapter's base model.
    expect(modelNameOrPath(AutoModelForCausalLM.fromPretrained(files))).toBe(
      "HuggingFaceTB/tiny-gemma",
    );
  });

  it("load sharded weights listed by model.safetensors.index.json", () => {
    expect(outcome(new MemoryFiles(sharded()))).toEqual(fromDirectory);
  });

  it("say which file is missing, and where", () => {
    const disk = onDisk();
    disk.delete("model.safetensors");
    expect(() =>
      AutoModelForCausalLM.fromPretrained(new MemoryFiles(disk, { location: "https://x.test/m" })),
    ).toThrow(
      /https:\/\/x\.test\/m: no model weights: expected model\.safetensors or model\.safetensors\.index\.json \(found: config\.json, generation_config\.json, tokenizer\.json, tokenizer_config\.json\)/,
    );
    disk.delete("config.json");
    expect(() => AutoModelForCausalLM.fromPretrained(new MemoryFiles(disk))).toThrow(
      FileNotFoundError,
    );
    expect(() => AutoModelForCausalLM.fromPretrained(new MemoryFiles(disk))).toThrow(
      /<memory>\/config\.json: file not found/,
    );
    disk.delete("tokenizer.json");
    expect(() => Tokenizer.fromPretrained(new MemoryFiles(disk))).toThrow(
      /tokenizer\.json: no tokenizer\.json/,
    );
  });

  it("take plain file names and bytes only", () => {
    for (const name of ["a/b.json", "..", "", "c\\d"])
      expect(() => new MemoryFiles({ [name]: new Uint8Array(1) })).toThrow(ValueError);
    expect(() => new MemoryFiles({ "config.json": "{}" as unknown as Uint8Array })).toThrow(
      /"config\.json" should be a Uint8Array, found string/,
    );
    expect(new MemoryFiles({ "./config.json": new Uint8Array(2) }).names()).toEqual([
      "config.json",
    ]);
  });
});

describe("files the user picked (File objects)", () => {
  it("load as the directory does", async () => {
    const picked = [...onDisk()].map(
      ([name, bytes]) => new File([bytes as Uint8Array<ArrayBuffer>], name),
    );
    const files = await filesFromBlobs(picked);
    expect(files.location).toBe("<picked files>");
    expect(outcome(files)).toEqual(outcome(DIR));
  });

  it("refuse two files of one name, and Blobs without a name", async () => {
    const a = new File([new Uint8Array(1)], "config.json");
    await expect(filesFromBlobs([a, a])).rejects.toThrow(/two files are named "config\.json"/);
    await expect(filesFromBlobs([new Blob([]) as File])).rejects.toThrow(/every Blob needs a name/);
    const named = await filesFromBlobs({ "config.json": new Blob(["{}"]) });
    expect(new TextDecoder().decode(named.read("config.json"))).toBe("{}");
  });
});

describe("a model fetched over HTTP", () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  // Serves the fixture at /tiny-gemma/, a failing folder at /broken/ and nothing else.
  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? "";
      requests.push(url);
      if (url.startsWith("/broken/")) {
        res.writeHead(500, "Internal Server Error").end();
        return;
      }
      const [, folder, name] = /^\/([^/]+)\/([^/]+)$/.exec(url) ?? [];
      const bytes = (
        folder === "tiny-gemma" || folder === "gzip"
          ? onDisk()
          : folder === "sharded"
            ? sharded()
            : null
      )?.get(name!);
      if (bytes === undefined) res.writeHead(404).end();
      else if (folder === "gzip") {
        const packed = gzipSync(bytes);
        res.writeHead(200, { "content-length": packed.byteLength, "content-encoding": "gzip" });
        res.end(packed);
      } else res.writeHead(200, { "content-length": bytes.byteLength }).end(bytes);
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("loads what the directory holds, reporting progress up to each file's size", async () => {
    const progress: FetchProgress[] = [];
    const files = await fetchModelFiles(`${base}/tiny-gemma/`, {
      onProgress: (p) => progress.push(p),
    });
    expect(files.location).toBe(`${base}/tiny-gemma`);
    expect(files.names().sort()).toEqual([...onDisk().keys()].sort());
    expect(outcome(files)).toEqual(outcome(DIR));
    for (const [name, bytes] of onDisk()) {
      const last = progress.filter((p) => p.file === name).at(-1);
      expect(last).toEqual({ file: name, loaded: bytes.byteLength, total: bytes.byteLength });
    }
  });

  it("loads sharded weights, asking for the index only when there is no single file", async () => {
    requests.length = 0;
    const files = await fetchModelFiles(`${base}/sharded`);
    expect(files.names().sort()).toEqual([...sharded().keys()].sort());
    expect(outcome(files)).toEqual(outcome(DIR));
    await fetchModelFiles(`${base}/tiny-gemma`);
    expect(requests.filter((r) => r.endsWith(".index.json"))).toEqual([
      "/sharded/model.safetensors.index.json",
    ]);
  });

  it("reads compressed responses, whose Content-Length is not the size read", async () => {
    const progress: FetchProgress[] = [];
    const files = await fetchModelFiles(`${base}/gzip`, { onProgress: (p) => progress.push(p) });
    expect(outcome(files)).toEqual(outcome(DIR));
    expect(progress.every((p) => p.total === null)).toBe(true);
  });

  it("says which URL is missing or failing", async () => {
    await expect(fetchModelFiles(`${base}/nothing`)).rejects.toThrow(FileNotFoundError);
    await expect(fetchModelFiles(`${base}/nothing`)).rejects.toThrow(
      `${base}/nothing/config.json: not found (HTTP 404)`,
    );
    const failure = fetchModelFiles(`${base}/broken`);
    await expect(failure).rejects.toThrow(PeftError);
    await expect(fetchModelFiles(`${base}/broken`)).rejects.toThrow(
      `${base}/broken/config.json: HTTP 500 Internal Server Error`,
    );
  });
});
