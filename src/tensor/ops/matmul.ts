import type { FloatDType } from "../../backend/dtype.js";
import { isFloat } from "../../backend/dtype.js";
import { DTypeError, ShapeError } from "../../errors.js";
import { record } from "../autograd.js";
import { broadcastShapes, fmt } from "../shape.js";
import { getAutocastDType } from "../state.js";
import { Tensor } from "../tensor.js";
import { cast } from "./elementwise.js";
import { packedWeight } from "./packed-weights.js";
import { sum } from "./reduce.js";
import { backend } from "./util.js";
import { reshape } from "./view.js";

/**
 * The dtype a matmul-class op computes in: the autocast dtype inside `autocast`, else the
 * operands' common dtype. Mixed dtypes outside autocast are an error that names both
 * (and the module, when the caller knows it), never a silent promotion.
 */
export function matmulDType(op: string, operands: readonly Tensor[], name?: string): FloatDType {
  const where = name === undefined ? "" : ` in ${name}`;
  for (const t of operands) {
    if (!isFloat(t.dtype)) {
      throw new DTypeError(op, `expected floating operands${where}, got ${t.dtype}`);
    }
  }
  const auto = getAutocastDType();
  if (auto !== null) return auto;
  const first = operands[0].dtype as FloatDType;
  const other = operands.find((t) => t.dtype !== first);
  if (other !== undefined) {
    throw new DTypeError(
      op,
      `expected all operands${where} to have the same dtype, got ${first} and ${other.dtype} (cast one of them, or run inside autocast)`,
    );
  }
  return first;
}

/** Batched matrix product over raw storage of tensors already in `dtype`. */
function product(
  a: Tensor,
  b: Tensor,
  transA: boolean,
  transB: boolean,
  dtype: FloatDType,
): Tensor {
  const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const m = transA ? a.shape[a.ndim - 1] : a.shape[a.ndim - 2];
  const n = transB ? b.shape[b.ndim - 2] : b.shape[b.ndim - 1];
  const data = backend().matmul(a.data, a.shape, b.data, b.shape, transA, transB, batch, dtype);
  return new Tensor(data, [...batch, m, n], dtype);
}

/** Matrix product with torch.matmul's rules: 1-D operands act as vectors, batch dims broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(
      "matmul",
      `both operands need at least one dimension, got shapes ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
  const dtype = matmulDType("matmul", [a, b]);
  const A = a.ndim === 1 ? reshape(cast(a, dtype), [1, a.shape[0]]) : cast(a, dtype);
  const B = b.ndim === 1 ? reshape(cast(b, dtype), [b.shape[0], 1]) : cast(b, dtype);
  const k = A.shape[A.ndim - 1];
  if (B.shape[B.ndim - 2] !== k) {
    throw new ShapeError(
      "matmul",
      `shapes ${fmt(a.shape)} and ${fmt(b.shape)} cannot be multiplied: inner sizes ${k} and ${B.shape[B.ndim - 2]} differ`,
    );
  }
  let out = record(product(A, B, false, false, dtype), "matmul", [A, B], (dy, needs) => [
    needs[0] ? product(dy, B, false, true, dtype) : null,
    needs[1] ? product(A, dy, true, false, dtype) : null,
  ]);
  if (a.ndim === 1) out = reshape(out, [...out.shape.slice(0, -2), out.shape[out.ndim - 1]]);
  if (b.ndim === 1) out = reshape(out, out.shape.slice(0, -1));
  return out;
}

/**
 * y = x Wᵀ + b, x [..., in], weight [out, in], bias [out]. Backward computes dW and db
 * only when the weight and bias require gradients: a frozen base layer costs one GEMM.
 * `name` (the module path) makes dtype errors point at the layer.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  options: { name?: string } = {},
): Tensor {
  const where = options.name === undefined ? "" : ` (${options.name})`;
  if (weight.ndim !== 2) {
    throw new ShapeError(
      "linear",
      `expected a 2-D weight [out, in]${where}, got shape ${fmt(weight.shape)}`,
    );
  }
  const [outF, inF] = weight.shape;
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(
      "linear",
      `input ${fmt(x.shape)} has ${x.shape[x.ndim - 1] ?? 0} features but weight ${fmt(weight.shape)} expects ${inF}${where}`,
    );
  }
  if (bias != null && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(
      "linear",
      `bias of shape ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)}: expected [${outF}]${where}`,
    );
  }
  const dtype = matmulDType("linear", bias == null ? [x, weight] : [x, weight, bias], options.name);
  const lead = x.shape.slice(0, -1);
  const X = reshape(cast(x, dtype), [-1, inF]);
  const packed = packedWeight(weight, dtype);
  // A frozen weight needs no cast in forward when it is packed: only dX = dY · W reads it,
  // so the cast waits for the backward pass.
  let cached: Tensor | null = packed === null ? cast(weight, dtype) : null;
  const W = () => (cached ??= cast(weight, dtype));
  const Bias = bias == null ? null : cast(bias, dtype);
  let y =
    packed === null
      ? product(X, W(), false, true, dtype)
      : new Tensor(backend().matmulPacked!(X.data, X.shape[0], packed), [X.shape[0], outF], dtype);
  if (Bias !== null) y = addBias(y, Bias);
  // The graph edge goes to the weight itself when it is packed (it is frozen: needs no
  // gradient), else to its cast, as for any input.
  const inputs = [X, cached ?? weight, ...(Bias === null ? [] : [Bias])];
  const out = record(y, "linear", inputs, (dy, needs) => [
    needs[0] ? product(dy, W(), false, false, dtype) : null,
    needs[1] ? product(dy, X, true, false, dtype) : null,
    needs[2] ? sum(dy, 0) : null,
  ]);
  return reshape(out, [...lead, outF]);
}

function addBias(y: Tensor, bias: Tensor): Tensor {
  const data = backend().binary("add", y.data, y.shape, bias.data, bias.shape, y.shape, y.dtype);
  return new Tensor(data, y.shape, y.dtype);
}
