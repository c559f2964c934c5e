import { resolveModelDir } from "../model-dir.js";
import { DirectoryFiles } from "./directory.js";
import type { ModelFiles } from "./model-files.js";

/** A model's files: given ones as they are; a path or hub id as its directory on disk. */
export function modelFiles(pathOrFiles: string | ModelFiles): ModelFiles {
  return typeof pathOrFiles === "string"
    ? new DirectoryFiles(resolveModelDir(pathOrFiles))
    : pathOrFiles;
}
