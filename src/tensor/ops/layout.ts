import { promoteTypes } from "../../backend/dtype.js";
import { ShapeError, ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { fmt, normalizeAxis } from "../shape.js";
import { Tensor } from "../tensor.js";
import { backend, rawAs } from "./util.js";
import { unsqueeze } from "./view.js";

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const p = perm.map((a) =>
    Number.isInteger(a) && a >= -x.ndim && a < x.ndim ? (a < 0 ? a + x.ndim : a) : -1,
  );
  if (p.length !== x.ndim || p.includes(-1) || new Set(p).size !== p.length) {
    throw new ShapeError(
      "permute",
      `[${perm.join(", ")}] is not a permutation of the ${x.ndim} axes of a tensor of shape ${fmt(x.shape)}`,
    );
  }
  if (p.every((a, i) => a === i)) return x;
  const out = new Tensor(
    backend().permute(x.data, x.shape, p, x.dtype),
    p.map((a) => x.shape[a]),
    x.dtype,
  );
  const inverse = new Array<number>(p.length);
  p.forEach((a, i) => {
    inverse[a] = i;
  });
  return record(out, "permute", [x], (dy) => [permute(dy, inverse)]);
}

/** Swaps two axes (a copy). */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  if (x.ndim < 2 && axis0 === -2 && axis1 === -1) return x;
  const a = normalizeAxis("transpose", axis0, x.ndim);
  const b = normalizeAxis("transpose", axis1, x.ndim);
  const perm = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

/** Python slicing x[start:end:step] on one axis: negative bounds count from the end, bounds clamp. */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  const ax = normalizeAxis("slice", axis, x.ndim);
  if (!Number.isInteger(step) || step < 1) {
    throw new ValueError(`slice: step must be a positive integer, got ${step}`);
  }
  if (!Number.isInteger(start) || (end !== undefined && !Number.isInteger(end))) {
    throw new ValueError(`slice: start and end must be integers, got ${start} and ${end}`);
  }
  const n = x.shape[ax];
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = clamp(start);
  const e = end === undefined ? n : clamp(end);
  const count = e > s ? Math.ceil((e - s) / step) : 0;
  if (s === 0 && count === n && step === 1) return x;
  const starts = x.shape.map((_, i) => (i === ax ? s : 0));
  const steps = x.shape.map((_, i) => (i === ax ? step : 1));
  const outShape = x.shape.map((d, i) => (i === ax ? count : d));
  const out = new Tensor(
    backend().slice(x.data, x.shape, starts, steps, outShape, x.dtype),
    outShape,
    x.dtype,
  );
  return record(out, "slice", [x], (dy) => [
    new Tensor(
      backend().sliceScatter(dy.data, x.shape, starts, steps, outShape, dy.dtype),
      x.shape,
      dy.dtype,
    ),
  ]);
}

/** Joins tensors along an existing axis; dtypes promote as torch.cat does. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ValueError("concat: expected at least one tensor, got none");
  const first = tensors[0];
  const ax = normalizeAxis("concat", axis, first.ndim);
  tensors.forEach((t, i) => {
    if (t.ndim !== first.ndim || t.shape.some((d, j) => j !== ax && d !== first.shape[j])) {
      throw new ShapeError(
        "concat",
        `tensor ${i} has shape ${fmt(t.shape)}, which does not match tensor 0's shape ${fmt(first.shape)} outside axis ${ax}`,
      );
    }
  });
  if (tensors.length === 1) return first;
  const dtype = tensors.map((t) => t.dtype).reduce(promoteTypes);
  const parts = tensors.map((t) => rawAs(t, dtype));
  const outShape = first.shape.map((d, j) =>
    j === ax ? tensors.reduce((n, t) => n + t.shape[ax], 0) : d,
  );
  const out = new Tensor(
    backend().concat(
      parts.map((p) => p.data),
      parts.map((p) => p.shape),
      ax,
      dtype,
    ),
    outShape,
    dtype,
  );
  return record(out, "concat", tensors, (dy) => {
    let at = 0;
    return tensors.map((t) => {
      const g = slice(dy, ax, at, at + t.shape[ax]);
      at += t.shape[ax];
      return g;
    });
  });
}

/** Joins same-shaped tensors along a new axis. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ValueError("stack: expected at least one tensor, got none");
  tensors.forEach((t, i) => {
    if (t.ndim !== tensors[0].ndim || t.shape.some((d, j) => d !== tensors[0].shape[j])) {
      throw new ShapeError(
        "stack",
        `tensor ${i} has shape ${fmt(t.shape)} but tensor 0 has ${fmt(tensors[0].shape)}; stack needs equal shapes`,
      );
    }
  });
  const ax = normalizeAxis("stack", axis, tensors[0].ndim + 1);
  return concat(
    tensors.map((t) => unsqueeze(t, ax)),
    ax,
  );
}
