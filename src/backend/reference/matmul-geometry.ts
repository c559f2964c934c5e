import type { Shape } from "../backend.js";
import { broadcastIndex, broadcastStrides, sizeOf } from "./strides.js";

/**
 * Sizes of a batched product op(A)[M, K] · op(B)[K, N] and, for each of the `count`
 * output matrices, the index of the A and B matrices it reads (batch broadcasting).
 */
export function matmulGeometry(
  aShape: Shape,
  bShape: Shape,
  transA: boolean,
  transB: boolean,
  batch: Shape,
) {
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const N = transB ? br : bc;
  const [aIndex, bIndex] = broadcastIndex(batch, [
    broadcastStrides(aShape.slice(0, -2), batch),
    broadcastStrides(bShape.slice(0, -2), batch),
  ]);
  return { M, K, N, count: sizeOf(batch), aIndex, bIndex };
}
