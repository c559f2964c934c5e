import type * as Node from "./model-dir.js";
import { noFileSystem } from "./no-file-system.js";

export const hubCacheDir: typeof Node.hubCacheDir = () => noFileSystem("the Hugging Face cache");
export const resolveModelDir: typeof Node.resolveModelDir = (pathOrId) =>
  noFileSystem(`loading "${pathOrId}" from a path`);
