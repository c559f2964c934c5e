import { noFileSystem } from "../io/no-file-system.js";
import type * as Node from "./checkpoint.js";

// Checkpoint directories need a file system; in browsers a checkpoint stays in memory
// (Trainer.checkpointFiles, the onCheckpoint callback, resumeFrom with the files).

const fail = (what: string) => () => noFileSystem(what);
export const writeCheckpoint: typeof Node.writeCheckpoint = fail("writing a checkpoint directory");
export const latestCheckpoint: typeof Node.latestCheckpoint = fail("finding checkpoints");
export const inDir: typeof Node.inDir = (dir, name) => `${dir}/${name}`;
export const makeDir: typeof Node.makeDir = fail("a training run's output directory");
