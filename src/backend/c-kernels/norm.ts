import type { Backend } from "../backend.js";
import { writeFloats } from "../reference/float.js";
import { referenceBackend } from "../reference/index.js";
import { allocateFloats, DTYPE_CODE, type KernelHost, served } from "./host.js";

type Floats = Float32Array | Uint16Array;

/** LayerNorm, RMSNorm and rotary embedding on the addon; float64 stays on the reference kernels. */
export function makeNorm(host: KernelHost): Pick<Backend, "norm" | "normGrad" | "rope"> {
  return {
    norm(kind, x, w, b, rows, n, eps, dtype) {
      if (!served(dtype)) return referenceBackend.norm(kind, x, w, b, rows, n, eps, dtype);
      const y = allocateFloats(host, dtype, rows * n);
      const mean = kind === "layer" ? new Float32Array(rows) : null;
      const rstd = new Float32Array(rows);
      host.norm(
        kind === "rms",
        DTYPE_CODE[dtype],
        x as Floats,
        w as Floats | null,
        b as Floats | null,
        rows,
        n,
        eps,
        y,
        mean,
        rstd,
      );
      return { y, mean, rstd };
    },

    normGrad(kind, x, w, stats, dy, rows, n, needW, needB, dtype) {
      const { mean, rstd } = stats;
      if (
        !served(dtype) ||
        !(rstd instanceof Float32Array) ||
        (mean !== null && !(mean instanceof Float32Array))
      ) {
        return referenceBackend.normGrad(kind, x, w, stats, dy, rows, n, needW, needB, dtype);
      }
      const dx = allocateFloats(host, dtype, rows * n);
      const dw = needW ? new Float64Array(n) : null;
      const db = needB ? new Float64Array(n) : null;
      host.normGrad(
        kind === "rms",
        DTYPE_CODE[dtype],
        x as Floats,
        w as Floats | null,
        mean,
        rstd,
        dy as Floats,
        rows,
        n,
        dx,
        dw,
        db,
      );
      const narrow = (v: Float64Array | null) =>
        v === null ? null : writeFloats(Float32Array.from(v), dtype);
      return { dx, dw: narrow(dw), db: narrow(db) };
    },

    rope(x, cos, sin, batch, heads, seq, dim, cosBatch, inverse, dtype) {
      if (!served(dtype)) {
        return referenceBackend.rope(x, cos, sin, batch, heads, seq, dim, cosBatch, inverse, dtype);
      }
      const y = allocateFloats(host, dtype, x.length);
      host.rope(
        DTYPE_CODE[dtype],
        x as Floats,
        cos as Floats,
        sin as Floats,
        batch,
        heads,
        seq,
        dim,
        cosBatch,
        inverse,
        y,
      );
      return y;
    },
  };
}
