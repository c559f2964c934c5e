import { record } from "../autograd.js";
import { normalizeAxis, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { backend, requireFloat } from "./util.js";

function softmaxOp(op: "softmax" | "logSoftmax", x: Tensor, axis: number): Tensor {
  const dtype = requireFloat(op, x);
  const ax = normalizeAxis(op, axis, Math.max(x.ndim, 1));
  const outer = sizeOf(x.shape.slice(0, ax));
  const n = x.ndim === 0 ? 1 : x.shape[ax];
  const inner = sizeOf(x.shape.slice(ax + 1));
  const log = op === "logSoftmax";
  const out = new Tensor(backend().softmax(x.data, outer, n, inner, log, dtype), x.shape, dtype);
  return record(out, op, [x], (dy) => [
    new Tensor(
      backend().softmaxGrad(out.data, dy.data, outer, n, inner, log, dtype),
      x.shape,
      dtype,
    ),
  ]);
}

/** exp(x) / sum(exp(x)) along `axis`, computed stably (the row maximum is subtracted first). */
export const softmax = (x: Tensor, axis = -1) => softmaxOp("softmax", x, axis);
/** x - logsumexp(x) along `axis`. */
export const logSoftmax = (x: Tensor, axis = -1) => softmaxOp("logSoftmax", x, axis);
