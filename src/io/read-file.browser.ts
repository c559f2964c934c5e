import { noFileSystem } from "./no-file-system.js";
import type * as Node from "./read-file.js";

export const readTextFile: typeof Node.readTextFile = (path) => noFileSystem(`reading ${path}`);
export const readBinaryFile: typeof Node.readBinaryFile = (path) => noFileSystem(`reading ${path}`);
export const readJsonFile: typeof Node.readJsonFile = (path) => noFileSystem(`reading ${path}`);
