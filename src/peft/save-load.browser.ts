import { noFileSystem } from "../io/no-file-system.js";
import { readAdapterFiles, WEIGHTS_NAME } from "./adapter-files.js";
import type * as Node from "./save-load.js";

export type { SaveStep } from "./save-load.js";

// Adapters in browsers come from and go to memory (a MemoryFiles, adapterFiles()).

export const setSaveHook: typeof Node.setSaveHook = () => {};

export const readAdapter: typeof Node.readAdapter = (source, onWarning, withWeights) =>
  typeof source === "string"
    ? noFileSystem(`reading the adapter in ${source}`)
    : readAdapterFiles(source, onWarning, withWeights);

export const readAdapterConfig: typeof Node.readAdapterConfig = (source, onWarning) =>
  readAdapter(source, onWarning, false).config;

export const writeAdapter: typeof Node.writeAdapter = (dir) =>
  noFileSystem(`saving an adapter to ${dir}`);

export const adapterDir: typeof Node.adapterDir = (dir) =>
  noFileSystem(`saving an adapter to ${dir}`);

export const weightsName: typeof Node.weightsName = (source) =>
  typeof source === "string" ? `${source}/${WEIGHTS_NAME}` : source.describe(WEIGHTS_NAME);
