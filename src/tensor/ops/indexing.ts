import { isFloat } from "../../backend/dtype.js";
import { DTypeError, IndexError, ShapeError } from "../../errors.js";
import { record } from "../autograd.js";
import { fmt, normalizeAxis } from "../shape.js";
import { Tensor } from "../tensor.js";
import { backend } from "./util.js";

/** Integer ids as Int32Array, each checked against [0, size). Negative ids are errors. */
function checkedIds(op: string, ids: Tensor, size: number, what: string): Int32Array {
  if (ids.dtype !== "int32" && ids.dtype !== "int64" && ids.dtype !== "uint8") {
    throw new DTypeError(op, `expected ${what} of dtype int32 or int64, got ${ids.dtype}`);
  }
  const src = ids.data as ArrayLike<number | bigint>;
  const out = new Int32Array(ids.size);
  for (let i = 0; i < out.length; i++) {
    const v = Number(src[i]);
    if (!(v >= 0 && v < size)) {
      throw new IndexError(
        op,
        `${what} ${v} at flat position ${i} is out of range: expected 0 <= ${what} < ${size}`,
      );
    }
    out[i] = v;
  }
  return out;
}

/** torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1, and so on. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const ax = normalizeAxis("gather", axis, x.ndim);
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== ax && d > x.shape[i])) {
    throw new ShapeError(
      "gather",
      `index of shape ${fmt(index.shape)} does not fit input of shape ${fmt(x.shape)} on axis ${ax} (expected the same number of axes and sizes no larger off the axis)`,
    );
  }
  const idx = checkedIds("gather", index, x.shape[ax], "index");
  const out = new Tensor(
    backend().gather(x.data, x.shape, ax, idx, index.shape, x.dtype),
    index.shape,
    x.dtype,
  );
  return record(out, "gather", [x], (dy) => {
    if (!isFloat(dy.dtype)) return [null];
    return [
      new Tensor(
        backend().scatterAdd(dy.data, index.shape, ax, idx, x.shape, dy.dtype),
        x.shape,
        dy.dtype,
      ),
    ];
  });
}

/** Rows of `weight` [V, D] picked by integer `ids` of any shape; the output is ids.shape + [D]. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  if (weight.ndim !== 2) {
    throw new ShapeError(
      "embedding",
      `expected a 2-D weight [num_embeddings, dim], got shape ${fmt(weight.shape)}`,
    );
  }
  const [rows, dim] = weight.shape;
  const idx = checkedIds("embedding", ids, rows, "id");
  const outShape = [...ids.shape, dim];
  const out = new Tensor(
    backend().embedding(weight.data, dim, idx, weight.dtype),
    outShape,
    weight.dtype,
  );
  return record(out, "embedding", [weight], (dy) => {
    if (!isFloat(dy.dtype)) return [null];
    return [
      new Tensor(
        backend().embeddingGrad(dy.data, dim, idx, rows, dy.dtype),
        weight.shape,
        dy.dtype,
      ),
    ];
  });
}
