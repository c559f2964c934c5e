import { type FloatDType, isHalf } from "../../backend/dtype.js";
import { AutogradError, ShapeError, ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { full, zeros } from "../creation.js";
import { fmt } from "../shape.js";
import { autocast, enableGrad, getAutocastDType, isGradEnabled, noGrad } from "../state.js";
import { unchangedSince } from "../storage-version.js";
import { Tensor } from "../tensor.js";
import { add, cast, mul } from "./elementwise.js";
import { concat, slice } from "./layout.js";
import { checkTargets, crossEntropy } from "./loss.js";
import { linear } from "./matmul.js";
import { scalar } from "./util.js";
import { reshape } from "./view.js";

export interface LinearCrossEntropyOptions {
  /** Targets equal to this contribute nothing (default -100). */
  ignoreIndex?: number;
  reduction?: "mean" | "sum";
  /** The loss's dtype, as crossEntropy's option (default float32). */
  dtype?: FloatDType;
  /** The module path, for dtype errors (as linear's `name`). */
  name?: string;
  /**
   * Logit elements per chunk (default 4M: 16 MB in float32). Only speed and memory depend
   * on it.
   */
  chunkElements?: number;
}

const CHUNK_ELEMENTS = 1 << 23;

/**
 * crossEntropy(linear(x, weight, bias), target, { dtype }) without the [rows,
 * classes] logits or their gradient ever in memory: rows go through in chunks of about
 * `chunkElements` logits. Each chunk runs the very ops of the unfused path (the autocast
 * dtype of the forward call included), so the result equals theirs up to the order of
 * the sums over chunks.
 *
 * Where only the input needs a gradient (a frozen head, as in LoRA) and no float16 is
 * involved, the forward pass computes the input's gradient for an upstream gradient of 1
 * while each chunk's logits are at hand, and the backward pass scales it: one product
 * and one softmax over the head fewer a step than computing the logits again. That
 * rounds the 16-bit gradient once more than the unfused ops when the upstream gradient is
 * not a power of two; float16, whose range is the reason for loss scaling, and trained
 * weights keep the other way: the backward pass computes each chunk's logits again, so
 * that their gradient is rounded from the true upstream gradient exactly as the unfused
 * ops would round it. A forward pass under grad that is never followed by a backward
 * pass has then done one product too many; evaluate under noGrad.
 *
 * For a language model's head the logits are the largest tensors of a training step
 * ([tokens, vocab]); fresh memory for them and their gradient costs more than the
 * products that fill it.
 */
export function linearCrossEntropy(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  target: Tensor,
  options: LinearCrossEntropyOptions = {},
): Tensor {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum") {
    throw new ValueError(
      `linearCrossEntropy: reduction must be "mean" or "sum", got ${JSON.stringify(reduction)}`,
    );
  }
  if (weight.ndim !== 2 || x.ndim === 0 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new ShapeError(
      "linearCrossEntropy",
      `input ${fmt(x.shape)} and weight ${fmt(weight.shape)} do not make a linear layer: expected a weight [classes, ${x.shape[x.ndim - 1] ?? 0}]`,
    );
  }
  const [classes, features] = weight.shape;
  const { rows, t, counted } = checkTargets(
    "linearCrossEntropy",
    target,
    [...x.shape.slice(0, -1), classes],
    "the logits",
    ignoreIndex,
  );
  const chunkElements = options.chunkElements ?? CHUNK_ELEMENTS;
  // Chunks of equal size (none of a few leftover rows), at most chunkElements logits each.
  const most = Math.max(1, Math.floor(chunkElements / classes));
  const step = Math.ceil(rows / Math.max(1, Math.ceil(rows / most)));
  const X = reshape(x.detach(), [rows, features]);
  const scale = reduction === "mean" ? 1 / counted : 1;
  const computeIn = getAutocastDType();
  // As crossEntropy: a 16-bit loss under autocast is computed in float32.
  const asked = options.dtype ?? "float32";
  const lossDType = computeIn !== null && isHalf(asked) ? "float32" : asked;
  const unchanged = unchangedSince(bias === null ? [weight] : [weight, bias]);
  const chunks: [number, number][] = [];
  for (let r = 0; r < rows; r += step) chunks.push([r, Math.min(rows, r + step)]);

  const targetsOf = ([r0, r1]: [number, number]) => new Tensor(t.slice(r0, r1), [r1 - r0], "int32");
  const chunkLogits = (xc: Tensor, w: Tensor, b: Tensor | null) =>
    linear(xc, w, b, { name: options.name });

  const eager =
    isGradEnabled() &&
    x.requiresGrad &&
    !weight.requiresGrad &&
    !bias?.requiresGrad &&
    ![computeIn, x.dtype, weight.dtype, bias?.dtype].includes("float16");

  // Row losses summed in float64 in row order, as crossEntropy sums them.
  let total = 0;
  // The eager path's input gradient for an upstream gradient of 1, chunk by chunk.
  const unit: Tensor[] = [];
  const lossesOf = (c: [number, number], xc: Tensor) => {
    const losses = crossEntropy(chunkLogits(xc, weight, bias), targetsOf(c), {
      ignoreIndex,
      reduction: "none",
      dtype: lossDType,
    });
    for (const v of losses.data as Float32Array | Float64Array) total += v;
    return losses;
  };
  if (eager) {
    for (const c of chunks) {
      const xc = slice(X, 0, c[0], c[1]).requiresGrad_();
      lossesOf(c, xc).backward(full([c[1] - c[0]], scale, { dtype: lossDType }));
      unit.push(xc.grad!);
    }
  } else {
    noGrad(() => {
      for (const c of chunks) lossesOf(c, slice(X, 0, c[0], c[1]));
    });
  }
  const out = scalar(total * scale, lossDType);
  const inputs = bias === null ? [x, weight] : [x, weight, bias];
  return record(out, "linearCrossEntropy", inputs, (dy, needs) => {
    if (eager) {
      const g = dy.item() as number;
      const dX =
        rows === 0 ? zeros(x.shape, { dtype: x.dtype }) : reshape(concat(unit, 0), x.shape);
      return [g === 1 ? dX : mul(dX, g), null, null];
    }
    if (!unchanged()) {
      throw new AutogradError(
        "linearCrossEntropy: the weight or bias was written in place between the forward and the backward pass, so the backward pass (which computes the logits again) would not match the forward",
      );
    }
    // Weight and bias gradients are summed over chunks in float32 (float64 for float64).
    const acc = (g: Tensor, sum: Tensor | null) => {
      const c = cast(g, g.dtype === "float64" ? "float64" : "float32");
      return sum === null ? c : add(sum, c);
    };
    const dloss = (dy.item() as number) * scale;
    const dx: Tensor[] = [];
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    // Leaves of each chunk's own graph; a frozen weight is passed as it is, so that its
    // packed copy (if any) is found.
    const leaf = (v: Tensor, needed: boolean) => (needed ? v.detach().requiresGrad_() : v);
    enableGrad(() =>
      autocast(computeIn, () => {
        for (const c of chunks) {
          const xc = leaf(slice(X, 0, c[0], c[1]), needs[0]);
          const w = leaf(weight, needs[1]);
          const b = bias === null ? null : leaf(bias, needs[2]);
          const logits = chunkLogits(xc, w, b);
          crossEntropy(logits, targetsOf(c), {
            ignoreIndex,
            reduction: "sum",
            dtype: lossDType,
          }).backward(scalar(dloss, lossDType));
          if (needs[0]) dx.push(xc.grad!);
          if (needs[1]) dw = acc(w.grad!, dw);
          if (b !== null && needs[2]) db = acc(b.grad!, db);
        }
      }),
    );
    // No rows: no chunks, and a gradient of no elements.
    const dX = rows === 0 ? zeros(x.shape, { dtype: x.dtype }) : reshape(concat(dx, 0), x.shape);
    return [needs[0] ? dX : null, dw, db];
  });
}
