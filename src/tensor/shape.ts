import { ShapeError } from "../errors.js";

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Right-aligned broadcasting as in NumPy/PyTorch; throws a ShapeError naming the op and every shape. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const ndim = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(ndim).fill(1);
  for (const s of shapes) {
    const offset = ndim - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i];
      const o = out[i + offset];
      if (d === o || d === 1) continue;
      if (o === 1) {
        out[i + offset] = d;
        continue;
      }
      throw new ShapeError(
        op,
        `cannot broadcast shapes ${shapes.map(fmt).join(" and ")}: sizes ${o} and ${d} differ at axis ${i + offset - ndim} (expected equal sizes or 1)`,
      );
    }
  }
  return out;
}

/** Whether `from` broadcasts to exactly `to` (right-aligned, sizes equal or 1). */
export function broadcastsTo(from: Shape, to: Shape): boolean {
  if (from.length > to.length) return false;
  const off = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[i + off]);
}

/** A possibly negative axis as an index in [0, ndim). */
export function normalizeAxis(op: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= Math.max(ndim, 1)) {
    throw new ShapeError(
      op,
      `axis ${axis} is out of range for a tensor with ${ndim} dimension${ndim === 1 ? "" : "s"} (expected an integer in [${-ndim}, ${Math.max(ndim, 1) - 1}])`,
    );
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Sorted, distinct, normalised axes; undefined means all axes. */
export function normalizeAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  ndim: number,
): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : axes;
  const out = [...new Set(list.map((a) => normalizeAxis(op, a, ndim)))].sort((a, b) => a - b);
  if (out.length !== list.length) {
    throw new ShapeError(op, `axes [${list.join(", ")}] name the same axis twice`);
  }
  return out;
}

export function checkShape(op: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(op, `invalid shape ${fmt(shape)}: sizes must be non-negative integers`);
    }
  }
}
