import type { ArithmeticOp, CompareOp, UnaryOp } from "../../backend/backend.js";
import type { DType, FloatDType } from "../../backend/dtype.js";
import { isDType, isFloat } from "../../backend/dtype.js";
import { DTypeError, ShapeError, ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { broadcastShapes, fmt, sameShape } from "../shape.js";
import { Tensor } from "../tensor.js";
import {
  backend,
  rawAs,
  resultType,
  scalar,
  shapeOf,
  storageAs,
  type TensorOrNumber,
} from "./util.js";

function asTensor(x: TensorOrNumber, dtype: DType): Tensor {
  return x instanceof Tensor ? rawAs(x, dtype) : scalar(x, dtype);
}

function arithmetic(op: ArithmeticOp, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  let dtype = resultType(a, b);
  // True division and real powers, as in PyTorch: integer operands give float32.
  if ((op === "div" || op === "pow") && !isFloat(dtype)) dtype = "float32";
  if (dtype === "bool" && op !== "maximum" && op !== "minimum") dtype = "int64";
  const outShape = broadcastShapes(op, shapeOf(a), shapeOf(b));
  const A = asTensor(a, dtype);
  const B = asTensor(b, dtype);
  const out = new Tensor(
    backend().binary(op, A.data, A.shape, B.data, B.shape, outShape, dtype),
    outShape,
    dtype,
  );
  const inputs = [a, b].filter((t): t is Tensor => t instanceof Tensor);
  if (inputs.length === 0) return out;
  return record(out, op, inputs, (dy) => {
    const [ga, gb] = arithmeticGrad(op, A, B, out, dy);
    return a instanceof Tensor ? (b instanceof Tensor ? [ga, gb] : [ga]) : [gb];
  });
}

/** Gradients in the op's promoted dtype and broadcast shape; the engine fits them to each input. */
function arithmeticGrad(
  op: ArithmeticOp,
  a: Tensor,
  b: Tensor,
  out: Tensor,
  dy: Tensor,
): [Tensor | null, Tensor | null] {
  switch (op) {
    case "add":
      return [dy, dy];
    case "sub":
      return [dy, neg(dy)];
    case "mul":
      return [mul(dy, b), mul(dy, a)];
    case "div":
      return [div(dy, b), neg(div(mul(dy, out), b))];
    case "pow": {
      // d(a^b)/da = b * a^(b-1); d(a^b)/db = a^b * ln(a) (only where a > 0 matters).
      const ga = mul(dy, mul(b, pow(a, sub(b, 1))));
      const gb = mul(dy, mul(out, log(a)));
      return [ga, gb];
    }
    case "maximum":
    case "minimum": {
      // Ties split the gradient evenly, as torch.maximum does.
      const winsA = op === "maximum" ? gt(a, b) : lt(a, b);
      const tie = eq(a, b);
      const shareA = add(rawAs(winsA, dy.dtype), mul(rawAs(tie, dy.dtype), 0.5));
      return [mul(dy, shareA), sub(dy, mul(dy, shareA))];
    }
  }
}

export const add = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("add", a, b);
export const sub = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("sub", a, b);
export const mul = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("mul", a, b);
export const div = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("div", a, b);
export const pow = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("pow", a, b);
export const maximum = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("maximum", a, b);
export const minimum = (a: TensorOrNumber, b: TensorOrNumber) => arithmetic("minimum", a, b);

function compare(op: CompareOp, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  const dtype = resultType(a, b);
  const outShape = broadcastShapes(op, shapeOf(a), shapeOf(b));
  const out = backend().binary(
    op,
    storageAs(a, dtype),
    shapeOf(a),
    storageAs(b, dtype),
    shapeOf(b),
    outShape,
    dtype,
  );
  return new Tensor(out, outShape, "bool");
}

export const eq = (a: TensorOrNumber, b: TensorOrNumber) => compare("eq", a, b);
export const ne = (a: TensorOrNumber, b: TensorOrNumber) => compare("ne", a, b);
export const lt = (a: TensorOrNumber, b: TensorOrNumber) => compare("lt", a, b);
export const le = (a: TensorOrNumber, b: TensorOrNumber) => compare("le", a, b);
export const gt = (a: TensorOrNumber, b: TensorOrNumber) => compare("gt", a, b);
export const ge = (a: TensorOrNumber, b: TensorOrNumber) => compare("ge", a, b);

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  // Integer inputs compute in float32, as torch.exp(int_tensor) does.
  const dtype: FloatDType = isFloat(x.dtype) ? x.dtype : "float32";
  const X = rawAs(x, dtype);
  const out = new Tensor(backend().unary(op, X.data, dtype), x.shape, dtype);
  return record(out, op, [x], (dy) => [
    new Tensor(backend().unaryGrad(op, X.data, dy.data, dtype), x.shape, dtype),
  ]);
}

export const neg = (x: Tensor) => unaryOp("neg", x);
export const abs = (x: Tensor) => unaryOp("abs", x);
export const exp = (x: Tensor) => unaryOp("exp", x);
export const log = (x: Tensor) => unaryOp("log", x);
export const sqrt = (x: Tensor) => unaryOp("sqrt", x);
export const rsqrt = (x: Tensor) => unaryOp("rsqrt", x);
export const tanh = (x: Tensor) => unaryOp("tanh", x);
export const sigmoid = (x: Tensor) => unaryOp("sigmoid", x);
export const relu = (x: Tensor) => unaryOp("relu", x);
export const silu = (x: Tensor) => unaryOp("silu", x);
/**
 * silu(gate) * up, Llama's gated MLP activation, as one kernel (one pass, one output, and
 * a backward that gives both gradients in one pass) when the two have the same shape and
 * float dtype; the same values as mul(silu(gate), up) either way.
 */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  if (gate.dtype !== up.dtype || !isFloat(gate.dtype) || !sameShape(gate.shape, up.shape)) {
    return mul(silu(gate), up);
  }
  const dtype = gate.dtype as FloatDType;
  const out = new Tensor(backend().siluMul(gate.data, up.data, dtype), gate.shape, dtype);
  return record(out, "siluMul", [gate, up], (dy) => {
    const { dgate, dup } = backend().siluMulGrad(gate.data, up.data, dy.data, dtype);
    return [new Tensor(dgate, gate.shape, dtype), new Tensor(dup, up.shape, dtype)];
  });
}

export const sin = (x: Tensor) => unaryOp("sin", x);
export const cos = (x: Tensor) => unaryOp("cos", x);

/** GELU, exact (erf) by default or the tanh approximation (`approximate: "tanh"`, GPT-2's gelu_new). */
export function gelu(x: Tensor, options: { approximate?: "none" | "tanh" } = {}): Tensor {
  const approximate = options.approximate ?? "none";
  if (approximate !== "none" && approximate !== "tanh") {
    throw new ValueError(
      `gelu: approximate must be "none" or "tanh", got ${JSON.stringify(approximate)}`,
    );
  }
  return unaryOp(approximate === "tanh" ? "gelu_tanh" : "gelu", x);
}

/** cond ? a : b with broadcasting; a and b promote to a common dtype. */
export function where(cond: Tensor, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (cond.dtype !== "bool" && cond.dtype !== "uint8") {
    throw new DTypeError("where", `expected a bool condition, got ${cond.dtype}`);
  }
  return select(cond, a, b, resultType(a, b));
}

/** x with `value` wherever mask is true; keeps x's dtype. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  if (mask.dtype !== "bool" && mask.dtype !== "uint8") {
    throw new DTypeError("maskedFill", `expected a bool mask, got ${mask.dtype}`);
  }
  const outShape = broadcastShapes("maskedFill", x.shape, mask.shape);
  if (!sameShape(outShape, x.shape)) {
    throw new ShapeError(
      "maskedFill",
      `mask of shape ${fmt(mask.shape)} would enlarge the input of shape ${fmt(x.shape)} (the mask may only broadcast to it)`,
    );
  }
  return select(mask, value, x, x.dtype);
}

function select(cond: Tensor, a: TensorOrNumber, b: TensorOrNumber, dtype: DType): Tensor {
  const outShape = broadcastShapes("where", cond.shape, shapeOf(a), shapeOf(b));
  const A = asTensor(a, dtype);
  const B = asTensor(b, dtype);
  const out = new Tensor(
    backend().where(
      cond.data as Uint8Array,
      cond.shape,
      A.data,
      A.shape,
      B.data,
      B.shape,
      outShape,
      dtype,
    ),
    outShape,
    dtype,
  );
  const inputs = [a, b].filter((t): t is Tensor => t instanceof Tensor);
  if (inputs.length === 0) return out;
  return record(out, "where", inputs, (dy) => {
    const zero = scalar(0, dy.dtype);
    const ga = select(cond, dy, zero, dy.dtype);
    const gb = select(cond, zero, dy, dy.dtype);
    return a instanceof Tensor ? (b instanceof Tensor ? [ga, gb] : [ga]) : [gb];
  });
}

/** x in `dtype`; the gradient flows back cast to x's dtype. Returns x itself when nothing changes. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (!isDType(dtype)) throw new ValueError(`cast: unknown dtype ${JSON.stringify(dtype)}`);
  if (x.dtype === dtype) return x;
  const out = new Tensor(backend().cast(x.data, x.dtype, dtype), x.shape, dtype);
  if (!isFloat(dtype)) return out;
  return record(out, "cast", [x], (dy) => [dy]);
}

/** A copy with its own storage. */
export function clone(x: Tensor): Tensor {
  const out = new Tensor(x.data.slice(), x.shape, x.dtype);
  return record(out, "clone", [x], (dy) => [dy]);
}
