import { Tensor } from "../../src/tensor/tensor.js";

/** Independent float64 helpers for tests: plain loops over flat arrays, no library ops. */
export function values(t: Tensor): number[] {
  return t.toFlatNumbers();
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Value of t at a multi-index, reading broadcast axes (size 1, or missing on the left) at 0. */
export function at(t: Tensor, index: readonly number[]): number {
  const v = t.toFlatNumbers();
  const st = strides(t.shape);
  const off = index.length - t.ndim;
  let flat = 0;
  for (let d = 0; d < t.ndim; d++) flat += (t.shape[d] === 1 ? 0 : index[d + off]) * st[d];
  return v[flat];
}

/** All multi-indices of a shape in row-major order. */
export function* indices(shape: readonly number[]): Generator<number[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const st = strides(shape);
  for (let i = 0; i < n; i++) yield shape.map((d, k) => Math.floor(i / st[k]) % d);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function f64(t: Tensor): Tensor {
  return new Tensor(Float64Array.from(t.toFlatNumbers()), t.shape, "float64");
}
