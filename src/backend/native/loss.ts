import type { Backend } from "../backend.js";
import { referenceBackend } from "../reference/index.js";
import { type Addon, allocateFloats, DTYPE_CODE, served } from "./addon.js";

type Floats = Float32Array | Uint16Array;

/** Cross-entropy forward and backward on the addon; float64 stays on the reference kernels. */
export function makeLoss(addon: Addon): Pick<Backend, "crossEntropy" | "crossEntropyGrad"> {
  return {
    crossEntropy(logits, targets, rows, classes, ignoreIndex, dtype) {
      if (!served(dtype)) {
        return referenceBackend.crossEntropy(logits, targets, rows, classes, ignoreIndex, dtype);
      }
      const loss = new Float32Array(rows);
      const lse = new Float32Array(rows);
      addon.crossEntropy(
        DTYPE_CODE[dtype],
        logits as Floats,
        targets,
        rows,
        classes,
        ignoreIndex,
        loss,
        lse,
      );
      return { loss, lse };
    },
    crossEntropyGrad(logits, targets, lse, dloss, rows, classes, ignoreIndex, dtype) {
      if (!served(dtype) || !(lse instanceof Float32Array) || !(dloss instanceof Float32Array)) {
        return referenceBackend.crossEntropyGrad(
          logits,
          targets,
          lse,
          dloss,
          rows,
          classes,
          ignoreIndex,
          dtype,
        );
      }
      const out = allocateFloats(dtype, rows * classes);
      addon.crossEntropyGrad(
        DTYPE_CODE[dtype],
        logits as Floats,
        targets,
        lse,
        dloss,
        rows,
        classes,
        ignoreIndex,
        out,
      );
      return out;
    },
  };
}
