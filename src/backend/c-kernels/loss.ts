import type { Backend } from "../backend.js";
import { referenceBackend } from "../reference/index.js";
import { allocateFloats, DTYPE_CODE, type KernelHost, served } from "./host.js";

type Floats = Float32Array | Uint16Array;

/** Cross-entropy forward and backward on the addon; float64 stays on the reference kernels. */
export function makeLoss(host: KernelHost): Pick<Backend, "crossEntropy" | "crossEntropyGrad"> {
  return {
    crossEntropy(logits, targets, rows, classes, ignoreIndex, dtype) {
      if (!served(dtype)) {
        return referenceBackend.crossEntropy(logits, targets, rows, classes, ignoreIndex, dtype);
      }
      const loss = new Float32Array(rows);
      const lse = new Float32Array(rows);
      host.crossEntropy(
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
      const out = allocateFloats(host, dtype, rows * classes);
      host.crossEntropyGrad(
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
