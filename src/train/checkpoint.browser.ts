import { noFileSystem } from "../io/no-file-system.js";
import type * as Node from "./checkpoint.js";

export type { MomentState } from "./checkpoint.js";

// Checkpoints are directories; the browser build of the Trainer has none to write.

export const STATE_FILE: typeof Node.STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE: typeof Node.OPTIMIZER_FILE = "optimizer.safetensors";

const fail = (what: string) => () => noFileSystem(what);
export const writeCheckpoint: typeof Node.writeCheckpoint = fail("writing a checkpoint");
export const latestCheckpoint: typeof Node.latestCheckpoint = fail("finding checkpoints");
export const inDir: typeof Node.inDir = (dir, name) => `${dir}/${name}`;
export const makeDir: typeof Node.makeDir = fail("a training run's output directory");
export const saveJson: typeof Node.saveJson = fail("writing a checkpoint");
export const loadJson: typeof Node.loadJson = fail("reading a checkpoint");
export const saveMoments: typeof Node.saveMoments = fail("writing a checkpoint");
export const loadMoments: typeof Node.loadMoments = fail("reading a checkpoint");
