export { rope, rotaryCosSin, scaledDotProductAttention } from "./attention.js";
export { dropout } from "./dropout.js";
export {
  abs,
  add,
  cast,
  clone,
  cos,
  div,
  eq,
  exp,
  ge,
  gelu,
  gt,
  le,
  log,
  lt,
  maskedFill,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  relu,
  rsqrt,
  sigmoid,
  silu,
  siluMul,
  sin,
  sqrt,
  sub,
  tanh,
  where,
} from "./elementwise.js";
export { embedding, gather } from "./indexing.js";
export { concat, permute, slice, stack, transpose } from "./layout.js";
export { inverse } from "./linalg.js";
export { crossEntropy } from "./loss.js";
export { linear, matmul } from "./matmul.js";
export { layerNorm, rmsNorm } from "./norm.js";
export { max, mean, min, sum, sumTo } from "./reduce.js";
export { logSoftmax, softmax } from "./softmax.js";
export { broadcastTo, flatten, reshape, squeeze, unsqueeze } from "./view.js";

import "./engine-hooks.js";
