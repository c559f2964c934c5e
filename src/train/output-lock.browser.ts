import { noFileSystem } from "../io/no-file-system.js";
import type * as Node from "./output-lock.js";

export const LOCK_NAME: typeof Node.LOCK_NAME = ".peft-train.lock";
export const lockOutputDir: typeof Node.lockOutputDir = (dir) =>
  noFileSystem(`a training run's output directory (${dir})`);
