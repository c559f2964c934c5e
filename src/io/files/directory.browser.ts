import { noFileSystem } from "../no-file-system.js";
import type * as Node from "./directory.js";

export const fileSource: typeof Node.fileSource = (path) => noFileSystem(`reading ${path}`);

export const filesIn: typeof Node.filesIn = (dirOrFiles) =>
  typeof dirOrFiles === "string" ? noFileSystem(`reading the directory ${dirOrFiles}`) : dirOrFiles;

export const DirectoryFiles: typeof Node.DirectoryFiles = class {
  constructor(readonly location: string) {
    noFileSystem(`reading the directory ${location}`);
  }
  describe = (): string => noFileSystem("a directory");
  has = (): boolean => noFileSystem("a directory");
  names = (): string[] => noFileSystem("a directory");
  read = (): Uint8Array => noFileSystem("a directory");
  open = (): never => noFileSystem("a directory");
};
