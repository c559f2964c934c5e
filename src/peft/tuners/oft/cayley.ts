import { eye } from "../../../tensor/creation.js";
import { add, mul, sub } from "../../../tensor/ops/elementwise.js";
import { transpose } from "../../../tensor/ops/layout.js";
import { inverse } from "../../../tensor/ops/linalg.js";
import { matmul } from "../../../tensor/ops/matmul.js";
import { reshape } from "../../../tensor/ops/view.js";
import type { Tensor } from "../../../tensor/tensor.js";

/**
 * The Cayley transform of each block [n, b, b]: with S the skew-symmetric part of the
 * block, Q = (I - S)·(I + S)⁻¹, a rotation. Only the skew part matters, so the diagonal
 * and the symmetric part get a zero gradient.
 */
export function cayley(blocks: Tensor): Tensor {
  const b = blocks.shape[blocks.ndim - 1];
  const skew = mul(sub(blocks, transpose(blocks)), 0.5);
  const I = eye(b, { dtype: blocks.dtype as never });
  return matmul(sub(I, skew), inverse(add(I, skew)));
}

/** block_diag(Q_0, ..., Q_{count-1}) from Q [count or 1, b, b] (one block repeated when 1). */
export function blockDiagonal(q: Tensor, count: number): Tensor {
  const [n, b] = q.shape;
  const pick = reshape(eye(count, { dtype: q.dtype as never }), [count, 1, count, 1]);
  return reshape(mul(pick, reshape(q, [n, b, 1, b])), [count * b, count * b]);
}
