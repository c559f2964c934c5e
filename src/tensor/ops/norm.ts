import type { FloatDType } from "../../backend/dtype.js";
import { promoteTypes } from "../../backend/dtype.js";
import { ShapeError } from "../../errors.js";
import { record } from "../autograd.js";
import { fmt } from "../shape.js";
import { Tensor } from "../tensor.js";
import { mul } from "./elementwise.js";
import { backend, rawAs, requireFloat } from "./util.js";

function checkParam(op: string, p: Tensor | null, n: number, what: string, x: Tensor): void {
  if (p !== null && (p.ndim !== 1 || p.shape[0] !== n)) {
    throw new ShapeError(
      op,
      `${what} of shape ${fmt(p.shape)} does not match input ${fmt(x.shape)}: expected [${n}]`,
    );
  }
}

/** The fused kernel with its backward; all tensors already share `dtype`. */
function normOp(
  kind: "layer" | "rms",
  x: Tensor,
  w: Tensor | null,
  b: Tensor | null,
  eps: number,
  dtype: FloatDType,
): Tensor {
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const X = rawAs(x, dtype);
  const W = w === null ? null : rawAs(w, dtype);
  const B = b === null ? null : rawAs(b, dtype);
  const saved = backend().norm(kind, X.data, W?.data ?? null, B?.data ?? null, rows, n, eps, dtype);
  const out = new Tensor(saved.y, x.shape, dtype);
  const inputs = [x, ...(w === null ? [] : [w]), ...(b === null ? [] : [b])];
  return record(out, kind === "layer" ? "layerNorm" : "rmsNorm", inputs, (dy, needs) => {
    const needW = w !== null && needs[1];
    const needB = b !== null && needs[w === null ? 1 : 2];
    const g = backend().normGrad(
      kind,
      X.data,
      W?.data ?? null,
      saved,
      dy.data,
      rows,
      n,
      needW,
      needB,
      dtype,
    );
    const grads: (Tensor | null)[] = [new Tensor(g.dx, x.shape, dtype)];
    if (w !== null) grads.push(g.dw === null ? null : new Tensor(g.dw, [n], dtype));
    if (b !== null) grads.push(g.db === null ? null : new Tensor(g.db, [n], dtype));
    return grads;
  });
}

/** Layer normalisation over the last axis (population variance), with optional weight and bias of shape [n]. */
export function layerNorm(
  x: Tensor,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  eps = 1e-5,
): Tensor {
  let dtype = requireFloat("layerNorm", x);
  const n = x.shape[x.ndim - 1];
  if (x.ndim === 0)
    throw new ShapeError("layerNorm", "expected at least one dimension, got a 0-d tensor");
  checkParam("layerNorm", weight, n, "weight", x);
  checkParam("layerNorm", bias, n, "bias", x);
  for (const p of [weight, bias])
    if (p !== null)
      dtype = promoteTypes(dtype, requireFloat("layerNorm", p, "parameter")) as FloatDType;
  return normOp("layer", x, weight, bias, eps, dtype);
}

/**
 * RMS normalisation over the last axis with Hugging Face LlamaRMSNorm's rounding: the
 * normalised value is rounded to x's dtype before the weight multiplies it, so a bf16
 * model reproduces transformers' numbers. A weight of another dtype multiplies with the
 * usual promotion.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6): Tensor {
  const dtype = requireFloat("rmsNorm", x);
  if (x.ndim === 0)
    throw new ShapeError("rmsNorm", "expected at least one dimension, got a 0-d tensor");
  checkParam("rmsNorm", weight, x.shape[x.ndim - 1], "weight", x);
  if (weight === null || weight.dtype === dtype) return normOp("rms", x, weight, null, eps, dtype);
  requireFloat("rmsNorm", weight, "weight");
  return mul(normOp("rms", x, null, null, eps, dtype), weight);
}
