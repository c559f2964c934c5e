import type { Backend } from "../backend.js";
import { referenceBackend } from "../reference/index.js";
import { type Addon, allocateFloats, DTYPE_CODE, served } from "./addon.js";

/** 4-bit dequantisation straight into the compute dtype; float64 stays on the reference kernel. */
export function makeQuant(addon: Addon): Pick<Backend, "dequantize4bit"> {
  return {
    dequantize4bit(packed, code, absmax, blocksize, start, count, dtype) {
      if (!served(dtype)) {
        return referenceBackend.dequantize4bit(
          packed,
          code,
          absmax,
          blocksize,
          start,
          count,
          dtype,
        );
      }
      const out = allocateFloats(dtype, count);
      addon.dequantize4bit(DTYPE_CODE[dtype], packed, code, absmax, blocksize, start, count, out);
      return out;
    },
  };
}
