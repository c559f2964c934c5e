import type { AttentionArgs, AttentionGrads, AttentionResult, Backend } from "../backend.js";
import type { Storage } from "../dtype.js";
import { readFloats } from "../reference/float.js";
import { referenceBackend } from "../reference/index.js";
import { allocateFloats, DTYPE_CODE, type KernelDType, type KernelHost, served } from "./host.js";

type Floats = Float32Array | Uint16Array;
const MASK_NONE = 0;
const MASK_BOOL = 1;
const MASK_FLOAT = 2;

/** The kernel's view of a mask: keep flags as bytes, additive masks as float32; null if it has none. */
function maskOf(a: AttentionArgs): [number, Uint8Array | Float32Array | null] | undefined {
  const m = a.mask;
  if (m === null) return [MASK_NONE, null];
  if (m.dtype === "bool" || m.dtype === "uint8") return [MASK_BOOL, m.data as Uint8Array];
  if (m.dtype === "float32") return [MASK_FLOAT, m.data as Float32Array];
  if (m.dtype === "bfloat16" || m.dtype === "float16" || m.dtype === "float64") {
    return [MASK_FLOAT, Float32Array.from(readFloats(m.data, m.dtype))];
  }
  return undefined;
}

/**
 * Attention forward and backward in C (csrc/kernels/attention.c): per head Q·Kᵀ and P·V on
 * the host's sgemm, the masked softmax between them. float64 and integer additive masks
 * go to the reference kernel.
 */
export function makeAttention(host: KernelHost): Pick<Backend, "attention" | "attentionGrad"> {
  function prepare(a: AttentionArgs) {
    const mask = maskOf(a);
    if (!served(a.dtype) || mask === undefined) return null;
    const strides = a.mask?.strides ?? [0, 0, 0, 0];
    const geometry = Float64Array.from([
      a.batch,
      a.headsQ,
      a.headsKV,
      a.seqQ,
      a.seqK,
      a.headDim,
      a.scale,
      a.causal ? 1 : 0,
      mask[0],
      ...strides,
    ]);
    return { dtype: a.dtype as KernelDType, geometry, mask: mask[1] };
  }

  function attention(a: AttentionArgs): AttentionResult {
    const p = prepare(a);
    if (p === null) return referenceBackend.attention(a);
    const out = allocateFloats(host, p.dtype, a.batch * a.headsQ * a.seqQ * a.headDim);
    const lse = new Float32Array(a.batch * a.headsQ * a.seqQ);
    host.attention(
      DTYPE_CODE[p.dtype],
      a.q as Floats,
      a.k as Floats,
      a.v as Floats,
      p.geometry,
      p.mask,
      out,
      lse,
    );
    return { out, lse };
  }

  function attentionGrad(a: AttentionArgs, res: AttentionResult, dout: Storage): AttentionGrads {
    const p = prepare(a);
    if (p === null) return referenceBackend.attentionGrad(a, res, dout);
    const dq = allocateFloats(host, p.dtype, a.q.length);
    const dk = allocateFloats(host, p.dtype, a.k.length);
    const dv = allocateFloats(host, p.dtype, a.v.length);
    host.attentionGrad(
      DTYPE_CODE[p.dtype],
      a.q as Floats,
      a.k as Floats,
      a.v as Floats,
      p.geometry,
      p.mask,
      res.out as Floats,
      dout as Floats,
      dq,
      dk,
      dv,
    );
    return { dq, dk, dv };
  }

  return { attention, attentionGrad };
}
