import type { Backend } from "../backend.js";
import { referenceBackend } from "../reference/index.js";
import { allocateFloats, DTYPE_CODE, type KernelHost, served } from "./host.js";

/** 4-bit dequantisation straight into the compute dtype; float64 stays on the reference kernel. */
export function makeQuant(host: KernelHost): Pick<Backend, "dequantize4bit"> {
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
      const out = allocateFloats(host, dtype, count);
      host.dequantize4bit(DTYPE_CODE[dtype], packed, code, absmax, blocksize, start, count, out);
      return out;
    },
  };
}
