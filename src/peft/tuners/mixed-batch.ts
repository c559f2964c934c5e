import { ShapeError } from "../../errors.js";
import { Tensor } from "../../tensor/tensor.js";

/** The name of a row that uses no adapter in a mixed batch (PEFT's "__base__"). */
export const BASE_ROWS = "__base__";

let rowAdapters: readonly string[] | null = null;

/**
 * Runs fn with one adapter name per batch row (PEFT's adapter_names): additive adapter
 * layers then add each row's own adapter only, and "__base__" rows get the base layer alone.
 */
export function withRowAdapters<T>(names: readonly string[], fn: () => T): T {
  const previous = rowAdapters;
  rowAdapters = names;
  try {
    return fn();
  } finally {
    rowAdapters = previous;
  }
}

export function currentRowAdapters(): readonly string[] | null {
  return rowAdapters;
}

/** 1 on the rows of `name`, 0 elsewhere, shaped [batch, 1, ...] to broadcast over `like`. */
export function rowMask(rows: readonly string[], name: string, like: Tensor): Tensor {
  if (like.shape[0] !== rows.length)
    throw new ShapeError(
      "adapterNames",
      `${rows.length} adapter names were given for a batch of ${like.shape[0]} rows`,
    );
  const shape = [rows.length, ...like.shape.slice(1).map(() => 1)];
  return Tensor.from(
    rows.map((r) => (r === name ? 1 : 0)),
    shape,
    like.dtype,
  );
}
