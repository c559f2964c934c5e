import { isFloat } from "../backend/dtype.js";
import { ShapeError, ValueError } from "../errors.js";
import { Embedding } from "../nn/layers.js";
import type { Module } from "../nn/module.js";
import { arange } from "../tensor/creation.js";
import { ne } from "../tensor/ops/elementwise.js";
import { linearCrossEntropy } from "../tensor/ops/linear-cross-entropy.js";
import { crossEntropy } from "../tensor/ops/loss.js";
import { reshape } from "../tensor/ops/view.js";
import { fmt } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";

/** Checks [B, T] integer ids. */
export function checkIds(op: string, ids: Tensor): [number, number] {
  if (ids.ndim !== 2 || (ids.dtype !== "int64" && ids.dtype !== "int32")) {
    throw new ShapeError(
      op,
      `expected inputIds of shape [batch, seq] and dtype int64 or int32, got ${fmt(ids.shape)} ${ids.dtype}`,
    );
  }
  return [ids.shape[0], ids.shape[1]];
}

/** Exactly one of ids [B, T] and embeddings [B, T, hidden]; returns [B, T]. */
export function checkInputs(
  op: string,
  ids: Tensor | null,
  embeds: Tensor | null,
  hidden: number,
): [number, number] {
  if ((ids === null) === (embeds === null))
    throw new ValueError(
      `${op}: give exactly one of inputIds and inputsEmbeds, got ${ids === null ? "neither" : "both"}`,
    );
  if (ids !== null) return checkIds(op, ids);
  const e = embeds as Tensor;
  if (e.ndim !== 3 || e.shape[2] !== hidden || !isFloat(e.dtype))
    throw new ShapeError(
      op,
      `expected inputsEmbeds of shape [batch, seq, ${hidden}] and a float dtype, got ${fmt(e.shape)} ${e.dtype}`,
    );
  return [e.shape[0], e.shape[1]];
}

/**
 * The attention mask as a bool [B, 1, 1, S] key mask for scaledDotProductAttention, or
 * null when absent (every key visible).
 */
export function keyMask(
  op: string,
  mask: Tensor | null | undefined,
  batch: number,
  keys: number,
): Tensor | null {
  if (mask == null) return null;
  if (mask.ndim !== 2 || mask.shape[0] !== batch || mask.shape[1] !== keys) {
    throw new ShapeError(
      op,
      `attentionMask of shape ${fmt(mask.shape)} does not match the ${keys} key positions: expected [${batch}, ${keys}]`,
    );
  }
  return reshape(ne(mask, 0), [batch, 1, 1, keys]);
}

/** Positions past..past+T-1 as a [1, T] int64 tensor. */
export function defaultPositions(past: number, seq: number): Tensor {
  return reshape(arange(past, past + seq), [1, seq]);
}

/** Mean next-token cross-entropy: logits at t predict labels at t+1; computed in float32. */
export function nextTokenLoss(logits: Tensor, labels: Tensor): Tensor {
  // Shifting the labels left (the last position gets the ignore index) instead of slicing
  // the logits gives the same mean without copying the [B, T, vocab] logits twice.
  return crossEntropy(logits, nextTokens(logits, labels), {
    ignoreIndex: IGNORE_INDEX,
    dtype: "float32",
  });
}

/** An output head that is one linear map, logits = hidden · weightᵀ + bias. */
export interface LinearHead {
  weight: Tensor;
  bias: Tensor | null;
}

/**
 * The weight of an output head tied to `embedding`: the embedding layer's own, also under
 * an adapter's wrapper (its `base_layer`) or a modules_to_save wrapper (its
 * `original_module`). As in PEFT, where the head shares the wrapped layer's parameter, an
 * adapter on the embeddings does not reach the head until it is merged into that weight.
 */
export function tiedHeadWeight(embedding: Module): Tensor {
  let m: Module | undefined = embedding;
  while (m !== undefined && !(m instanceof Embedding))
    m = m.childModule("base_layer") ?? m.childModule("original_module");
  if (m === undefined) {
    throw new ValueError(
      `the output head is tied to ${embedding.path || "the embeddings"}, but that is a ${embedding.constructor.name} with no embedding layer inside`,
    );
  }
  return m.weight;
}

/** The head as a LinearHead when neither tensor is trained, else null. */
export function frozenHead(weight: Tensor, bias: Tensor | null): LinearHead | null {
  if (weight.requiresGrad || bias?.requiresGrad) return null;
  return { weight, bias };
}

/**
 * nextTokenLoss(head(hidden), labels) without the [B, T, vocab] logits in memory (see
 * linearCrossEntropy).
 */
export function nextTokenLinearLoss(hidden: Tensor, head: LinearHead, labels: Tensor): Tensor {
  return linearCrossEntropy(hidden, head.weight, head.bias, nextTokens(hidden, labels), {
    ignoreIndex: IGNORE_INDEX,
    name: "lm_head",
  });
}

/** The label each position predicts (labels shifted left), checked against `x` [B, T, ...]. */
function nextTokens(x: Tensor, labels: Tensor): Tensor {
  const t = x.shape[1];
  if (labels.ndim !== 2 || labels.shape[0] !== x.shape[0] || labels.shape[1] !== t) {
    throw new ShapeError(
      "loss",
      `labels of shape ${fmt(labels.shape)} do not match the batch: expected [${x.shape[0]}, ${t}]`,
    );
  }
  return shiftLeft(labels, IGNORE_INDEX);
}

const IGNORE_INDEX = -100;

/** [B, T] labels moved one step left along T, the freed last column set to `fill`. */
function shiftLeft(labels: Tensor, fill: number): Tensor {
  const [b, t] = labels.shape;
  const src = labels.data as ArrayLike<number | bigint>;
  const out = new Int32Array(b * t);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < t; j++) out[i * t + j] = j + 1 < t ? Number(src[i * t + j + 1]) : fill;
  }
  return new Tensor(out, [b, t], "int32");
}
