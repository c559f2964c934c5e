import type { ReduceOp } from "../../backend/backend.js";
import { isFloat } from "../../backend/dtype.js";
import { ShapeError } from "../../errors.js";
import { record } from "../autograd.js";
import { fmt, normalizeAxes, sameShape, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { div, eq, mul } from "./elementwise.js";
import { backend, rawAs } from "./util.js";
import { broadcastTo, reshape } from "./view.js";

type Axes = number | readonly number[] | undefined;

function reduceOp(op: ReduceOp, x: Tensor, axis: Axes, keepdim: boolean): Tensor {
  const axes = normalizeAxes(op, axis, x.ndim);
  if ((op === "max" || op === "min") && axes.some((a) => x.shape[a] === 0)) {
    throw new ShapeError(op, `cannot reduce an empty axis of a tensor of shape ${fmt(x.shape)}`);
  }
  // Sums of booleans count (int64); means of integers are float32, as in PyTorch.
  const dtype =
    op === "mean" && !isFloat(x.dtype)
      ? "float32"
      : op === "sum" && (x.dtype === "bool" || x.dtype === "uint8")
        ? "int64"
        : x.dtype;
  const X = rawAs(x, dtype);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepdim ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  const out = new Tensor(backend().reduce(op, X.data, X.shape, axes, dtype), outShape, dtype);
  return record(out, op, [x], (dy) => {
    const g = broadcastTo(reshape(dy, keptShape), x.shape);
    if (op === "sum") return [g];
    if (op === "mean") return [div(g, sizeOf(axes.map((a) => x.shape[a])))];
    // max/min: the gradient goes to the extreme elements, split evenly between ties.
    const hit = rawAs(eq(X, broadcastTo(reshape(out, keptShape), x.shape)), dtype);
    const count = backend().reduce("sum", hit.data, hit.shape, axes, dtype);
    return [div(mul(g, hit), broadcastTo(new Tensor(count, keptShape, dtype), x.shape))];
  });
}

export const sum = (x: Tensor, axis?: Axes, keepdim = false) => reduceOp("sum", x, axis, keepdim);
export const mean = (x: Tensor, axis?: Axes, keepdim = false) => reduceOp("mean", x, axis, keepdim);
/** Largest value over the axes (torch.amax); the gradient is shared by ties. */
export const max = (x: Tensor, axis?: Axes, keepdim = false) => reduceOp("max", x, axis, keepdim);
/** Smallest value over the axes (torch.amin); the gradient is shared by ties. */
export const min = (x: Tensor, axis?: Axes, keepdim = false) => reduceOp("min", x, axis, keepdim);

/** Sums a broadcast result back down to `shape` (the adjoint of broadcastTo). */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const lead = x.ndim - shape.length;
  if (lead < 0) {
    throw new ShapeError(
      "sumTo",
      `cannot sum shape ${fmt(x.shape)} down to the larger shape ${fmt(shape)}`,
    );
  }
  const axes: number[] = [];
  for (let i = 0; i < x.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && x.shape[i] !== 1)) axes.push(i);
    else if (shape[i - lead] !== x.shape[i]) {
      throw new ShapeError("sumTo", `shape ${fmt(x.shape)} does not broadcast from ${fmt(shape)}`);
    }
  }
  return reshape(sum(x, axes, true), shape);
}
