import type * as Node from "./atomic.js";
import { noFileSystem } from "./no-file-system.js";

export const writeFileAtomic: typeof Node.writeFileAtomic = (path) =>
  noFileSystem(`writing ${path}`);
export const appendFileNoFollow: typeof Node.appendFileNoFollow = (path) =>
  noFileSystem(`writing ${path}`);
