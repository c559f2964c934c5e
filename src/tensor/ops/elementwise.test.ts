import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { Tensor } from "../tensor.js";
import * as ops from "./index.js";

describe("smoke", () => {
  it("add broadcast grad", () => {
    const a = param([2, 3], 1);
    const b = param([3], 2);
    gradcheck((x, y) => ops.mul(ops.add(x, y), x), [a, b]);
  });
  it("sum", () => {
    const t = Tensor.from([[1, 2], [3, 4]], undefined, "float32");
    expect(ops.sum(t, 0).toArray()).toEqual([4, 6]);
  });
});
