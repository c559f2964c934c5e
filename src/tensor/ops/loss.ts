import type { FloatDType } from "../../backend/dtype.js";
import { isHalf } from "../../backend/dtype.js";
import { DTypeError, IndexError, ShapeError, ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { fmt } from "../shape.js";
import { getAutocastDType } from "../state.js";
import { Tensor } from "../tensor.js";
import { backend, rawAs, requireFloat } from "./util.js";

export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing (default -100, as in PyTorch and Hugging Face labels). */
  ignoreIndex?: number;
  reduction?: "mean" | "sum" | "none";
  /**
   * The loss's dtype; "float32" computes 16-bit logits in float32 as `logits.float()`
   * would, without the float32 copy of the logits.
   */
  dtype?: FloatDType;
}

/**
 * Cross-entropy of logits [..., C] against integer targets of shape logits.shape[:-1].
 * "mean" averages over the targets that are not ignored. Under autocast, 16-bit logits
 * are computed in float32 and the loss is float32, as torch.autocast keeps losses.
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new ValueError(
      `crossEntropy: reduction must be "mean", "sum" or "none", got ${JSON.stringify(reduction)}`,
    );
  }
  let dtype: FloatDType = options.dtype ?? requireFloat("crossEntropy", logits, "logits");
  if (options.dtype !== undefined) requireFloat("crossEntropy", logits, "logits");
  if (getAutocastDType() !== null && isHalf(dtype)) dtype = "float32";
  // The kernels compute every dtype but float64 in float32, so 16-bit logits are read as
  // they are and their gradient is rounded once, exactly as through a float32 copy.
  const kernelDtype =
    dtype === "float64" || logits.dtype === "float64" ? dtype : (logits.dtype as FloatDType);
  const { classes, rows, t, counted } = checkTargets(
    "crossEntropy",
    target,
    logits.shape,
    "logits",
    ignoreIndex,
  );
  const X = rawAs(logits, kernelDtype);
  const { loss, lse } = backend().crossEntropy(X.data, t, rows, classes, ignoreIndex, kernelDtype);
  let value: Tensor;
  let scale = 1;
  if (reduction === "none") {
    value = new Tensor(new Float64Array(loss), target.shape, "float64");
  } else {
    let s = 0;
    for (let i = 0; i < rows; i++) s += loss[i];
    if (reduction === "mean") scale = 1 / counted;
    value = new Tensor(new Float64Array([s * scale]), [], "float64");
  }
  const out = rawAs(value, dtype);
  return record(out, "crossEntropy", [logits], (dy) => {
    const g = rawAs(dy, "float64").data as Float64Array;
    const dloss = kernelDtype === "float64" ? new Float64Array(rows) : new Float32Array(rows);
    for (let i = 0; i < rows; i++) dloss[i] = (reduction === "none" ? g[i] : g[0]) * scale;
    return [
      new Tensor(
        backend().crossEntropyGrad(X.data, t, lse, dloss, rows, classes, ignoreIndex, kernelDtype),
        logits.shape,
        kernelDtype,
      ),
    ];
  });
}

/**
 * The targets of a loss over `logitsShape` [..., classes] as int32, checked: integer, of
 * shape logitsShape[:-1], each a class or ignoreIndex. `counted`: how many are not ignored.
 */
export function checkTargets(
  op: string,
  target: Tensor,
  logitsShape: readonly number[],
  what: string,
  ignoreIndex: number,
): { classes: number; rows: number; t: Int32Array; counted: number } {
  if (target.dtype !== "int32" && target.dtype !== "int64") {
    throw new DTypeError(op, `expected int32 or int64 targets, got ${target.dtype}`);
  }
  if (
    logitsShape.length === 0 ||
    target.ndim !== logitsShape.length - 1 ||
    target.shape.some((d, i) => d !== logitsShape[i])
  ) {
    throw new ShapeError(
      op,
      `targets of shape ${fmt(target.shape)} do not match ${what} of shape ${fmt(logitsShape)}: expected ${fmt(logitsShape.slice(0, -1))}`,
    );
  }
  const classes = logitsShape[logitsShape.length - 1];
  const rows = target.size;
  const t = new Int32Array(rows);
  let counted = 0;
  const src = target.data as ArrayLike<number | bigint>;
  for (let i = 0; i < rows; i++) {
    const v = Number(src[i]);
    if (v !== ignoreIndex) {
      if (!(v >= 0 && v < classes)) {
        throw new IndexError(
          op,
          `target ${v} at position ${i} is out of range for ${classes} classes (and is not ignoreIndex ${ignoreIndex})`,
        );
      }
      counted++;
    }
    t[i] = v;
  }
  return { classes, rows, t, counted };
}
