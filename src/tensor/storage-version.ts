import type { Storage } from "../backend/dtype.js";
import type { Tensor } from "./tensor.js";

/**
 * How many times each storage has been written in place. Tensors are immutable by
 * convention, but a few operations overwrite a tensor's values where references to it
 * must stay valid (merging an adapter into a base weight, optimizer steps, loading a
 * state dict); they call markWritten, and anything derived from a storage and kept
 * (a packed weight) compares versions before reuse. Views share their storage, so a
 * write through any of them counts.
 */
const versions = new WeakMap<Storage, number>();

function storageVersion(storage: Storage): number {
  return versions.get(storage) ?? 0;
}

/** Records an in-place write to `storage`. Call it after writing a tensor's data directly. */
export function markWritten(storage: Storage): void {
  versions.set(storage, storageVersion(storage) + 1);
}

/** Copies `values` (the same storage type and length) into `target` and records the write. */
export function overwrite(target: Storage, values: Storage): void {
  (target as Uint8Array).set(values as Uint8Array);
  markWritten(target);
}

/** Which storage, at which version, a kept value was derived from. */
export interface StorageStamp {
  readonly storage: Storage;
  readonly version: number;
}

export function stampOf(storage: Storage): StorageStamp {
  return { storage, version: storageVersion(storage) };
}

/** Whether a value stamped `stamp` still matches `storage`: the same array, not written since. */
export function isCurrent(stamp: StorageStamp, storage: Storage): boolean {
  return stamp.storage === storage && stamp.version === storageVersion(storage);
}

/**
 * For values derived from `tensors` now and used later: a check that is true while none
 * of them has been written in place (or given other storage) since this call.
 */
export function unchangedSince(tensors: readonly Tensor[]): () => boolean {
  const stamps = tensors.map((t) => stampOf(t.data));
  return () => tensors.every((t, i) => isCurrent(stamps[i], t.data));
}
