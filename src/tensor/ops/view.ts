import { ShapeError } from "../../errors.js";
import { record } from "../autograd.js";
import { broadcastShapes, fmt, normalizeAxis, sameShape, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { sumTo } from "./reduce.js";
import { backend } from "./util.js";

/** Same storage, new shape; one size may be -1 and is inferred. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const target = inferShape(x, shape);
  if (sameShape(target, x.shape)) return x;
  const out = new Tensor(x.data, target, x.dtype);
  return record(out, "reshape", [x], (dy) => [new Tensor(dy.data, x.shape, dy.dtype)]);
}

function inferShape(x: Tensor, shape: readonly number[]): number[] {
  const unknown = shape.filter((d) => d === -1).length;
  const bad = shape.some((d) => !Number.isInteger(d) || d < -1);
  if (unknown > 1 || bad) {
    throw new ShapeError(
      "reshape",
      `invalid target shape ${fmt(shape)}: expected non-negative integers with at most one -1`,
    );
  }
  const known = sizeOf(shape.filter((d) => d !== -1));
  const target = [...shape];
  if (unknown === 1) {
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(
        "reshape",
        `cannot infer -1 in ${fmt(shape)} for ${x.size} elements (shape ${fmt(x.shape)})`,
      );
    }
    target[target.indexOf(-1)] = x.size / known;
  }
  if (sizeOf(target) !== x.size) {
    throw new ShapeError(
      "reshape",
      `cannot reshape a tensor of shape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)} (${sizeOf(target)} elements)`,
    );
  }
  return target;
}

/** Merges axes startAxis..endAxis into one. */
export function flatten(x: Tensor, startAxis = 0, endAxis = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normalizeAxis("flatten", startAxis, x.ndim);
  const e = normalizeAxis("flatten", endAxis, x.ndim);
  if (s > e)
    throw new ShapeError("flatten", `startAxis ${startAxis} comes after endAxis ${endAxis}`);
  return reshape(x, [
    ...x.shape.slice(0, s),
    sizeOf(x.shape.slice(s, e + 1)),
    ...x.shape.slice(e + 1),
  ]);
}

/** Drops size-1 axes: the given one, or all of them. */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normalizeAxis("squeeze", axis, x.ndim);
  if (x.shape[a] !== 1) return x;
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

/** Inserts a size-1 axis at `axis` (an index into the result, which has ndim + 1 axes). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis("unsqueeze", axis, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Materialises x broadcast to `shape`. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const out = broadcastShapes("broadcastTo", x.shape, shape);
  if (!sameShape(out, shape)) {
    throw new ShapeError("broadcastTo", `cannot broadcast shape ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  // where(true, x, x) copies bits exactly (keeps -0 and NaN payloads) for every dtype.
  const yes = new Uint8Array([1]);
  const data = backend().where(yes, [], x.data, x.shape, x.data, x.shape, shape, x.dtype);
  return record(new Tensor(data, shape, x.dtype), "broadcastTo", [x], (dy) => [sumTo(dy, x.shape)]);
}
