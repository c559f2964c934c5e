import { ShapeError, ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { fmt } from "../shape.js";
import { Tensor } from "../tensor.js";
import { neg } from "./elementwise.js";
import { transpose } from "./layout.js";
import { matmul } from "./matmul.js";
import { requireFloat } from "./util.js";

/** Inverts one n×n matrix in place (float64, Gauss-Jordan with partial pivoting); false if singular. */
function invertInPlace(a: Float64Array, inv: Float64Array, n: number): boolean {
  inv.fill(0);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[p * n + c])) p = r;
    const pivot = a[p * n + c];
    if (pivot === 0 || !Number.isFinite(pivot)) return false;
    if (p !== c)
      for (let k = 0; k < n; k++) {
        [a[p * n + k], a[c * n + k]] = [a[c * n + k], a[p * n + k]];
        [inv[p * n + k], inv[c * n + k]] = [inv[c * n + k], inv[p * n + k]];
      }
    const s = 1 / pivot;
    for (let k = 0; k < n; k++) {
      a[c * n + k] *= s;
      inv[c * n + k] *= s;
    }
    for (let r = 0; r < n; r++) {
      const f = a[r * n + c];
      if (r === c || f === 0) continue;
      for (let k = 0; k < n; k++) {
        a[r * n + k] -= f * a[c * n + k];
        inv[r * n + k] -= f * inv[c * n + k];
      }
    }
  }
  return true;
}

/**
 * The inverse of each square matrix in the last two axes (torch.linalg.inv), computed in
 * float64 and rounded to x's dtype. Gradient: dX = -Y^T·dY·Y^T with Y = X^-1.
 */
export function inverse(x: Tensor): Tensor {
  const dtype = requireFloat("inverse", x);
  const n = x.shape[x.ndim - 1];
  if (x.ndim < 2 || x.shape[x.ndim - 2] !== n)
    throw new ShapeError("inverse", `expected square matrices [..., n, n], got ${fmt(x.shape)}`);
  const values = x.to("float64").data as Float64Array;
  const out = new Float64Array(values.length);
  const a = new Float64Array(n * n);
  const inv = new Float64Array(n * n);
  for (let m = 0; m < values.length / (n * n || 1); m++) {
    a.set(values.subarray(m * n * n, (m + 1) * n * n));
    if (!invertInPlace(a, inv, n))
      throw new ValueError(`inverse: matrix ${m} of a ${fmt(x.shape)} tensor is singular`);
    out.set(inv, m * n * n);
  }
  const y = new Tensor(out, x.shape, "float64").to(dtype);
  const yc = y.detach();
  return record(y, "inverse", [x], (dy) => {
    const yt = transpose(yc);
    return [neg(matmul(matmul(yt, dy), yt))];
  });
}
