import type { Backend, Shape } from "../backend.js";
import type { DType, Storage } from "../dtype.js";
import { sliceGeometry } from "../reference/layout.js";
import { sizeOf, stridesOf } from "../reference/strides.js";
import { allocateOutput, type KernelHost } from "./host.js";

/** Permute and slice of any dtype as one strided copy in the host. */
export function makeLayout(host: KernelHost): Pick<Backend, "permute" | "slice"> {
  function copy(
    x: Storage,
    outShape: Shape,
    strides: readonly number[],
    offset: number,
    dtype: DType,
  ): Storage {
    const out = allocateOutput(host, dtype, sizeOf(outShape));
    const n = outShape.length;
    const geometry = new Float64Array(3 + 2 * n);
    geometry[0] = out.BYTES_PER_ELEMENT;
    geometry[1] = n;
    geometry[2] = offset;
    geometry.set(outShape, 3);
    geometry.set(strides, 3 + n);
    host.stridedCopy(geometry, x, out);
    return out;
  }
  return {
    permute(x, shape, perm, dtype) {
      const strides = stridesOf(shape);
      return copy(
        x,
        perm.map((p) => shape[p]),
        perm.map((p) => strides[p]),
        0,
        dtype,
      );
    },
    slice(x, shape, starts, steps, outShape, dtype) {
      const { start, strides } = sliceGeometry(shape, starts, steps);
      return copy(x, outShape, strides, start, dtype);
    },
  };
}
