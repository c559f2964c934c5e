import type { FloatDType } from "../backend/dtype.js";
import { isFloat } from "../backend/dtype.js";
import { FileFormatError, ShapeError } from "../errors.js";
import type { Checkpoint } from "../io/checkpoint.js";
import type { Module } from "../nn/module.js";
import { fmt, sameShape } from "../tensor/shape.js";
import { noGrad } from "../tensor/state.js";
import type { Tensor } from "../tensor/tensor.js";

export interface LoadReport {
  /** Checkpoint tensors the model has no place for (after the ignore patterns). */
  unexpected: string[];
}

/**
 * Fills every parameter of `model` from the checkpoint, one tensor at a time, converting
 * floating tensors to `dtype`. Missing tensors and shape mismatches are errors naming
 * the tensor; unexpected checkpoint tensors are reported unless an ignore pattern
 * matches them.
 */
export function loadWeights(
  model: Module,
  checkpoint: Checkpoint,
  dtype: FloatDType,
  options: {
    ignore?: readonly RegExp[];
    rename?: (name: string) => string;
    alreadyUsed?: ReadonlySet<string>;
    /** Sees every tensor as it is loaded, in the dtype it is kept in. */
    inspect?: (name: string, t: Tensor) => void;
  } = {},
): LoadReport {
  const used = new Set<string>(options.alreadyUsed ?? []);
  const missing: string[] = [];
  for (const [modName, m] of model.namedModules()) {
    for (const [local, current, kind] of m.localTensors()) {
      const name = modName ? `${modName}.${local}` : local;
      const fileName = options.rename ? options.rename(name) : name;
      if (!checkpoint.has(fileName)) {
        missing.push(fileName);
        continue;
      }
      used.add(fileName);
      const loaded = checkpoint.load(fileName);
      if (!sameShape(loaded.shape, current.shape)) {
        throw new ShapeError(
          "fromPretrained",
          `tensor "${fileName}" in ${checkpoint.dir} has shape ${fmt(loaded.shape)}, but the model built from config.json expects ${fmt(current.shape)}`,
        );
      }
      const value =
        isFloat(loaded.dtype) && loaded.dtype !== dtype ? noGrad(() => loaded.to(dtype)) : loaded;
      // After the conversion: a float32 weight beyond float16's range becomes infinite here.
      options.inspect?.(fileName, value);
      value.requiresGrad = current.requiresGrad && isFloat(value.dtype);
      if (kind === "parameter") m.setParameter(local, value);
      else m.setBuffer(local, value);
    }
  }
  if (missing.length > 0) {
    throw new FileFormatError(
      checkpoint.dir,
      `the checkpoint lacks ${missing.length} tensor(s) the model needs: ${missing.slice(0, 8).join(", ")}${missing.length > 8 ? ", ..." : ""}`,
    );
  }
  const ignore = options.ignore ?? [];
  const unexpected = checkpoint
    .keys()
    .filter((k) => !used.has(k) && !ignore.some((r) => r.test(k)));
  return { unexpected };
}
