import { describe, expect, it } from "vitest";
import { gradcheck, param } from "../../../test/helpers/gradcheck.js";
import { ValueError } from "../../errors.js";
import { eye } from "../creation.js";
import { Tensor } from "../tensor.js";
import { add } from "./elementwise.js";
import { inverse } from "./linalg.js";
import { matmul } from "./matmul.js";

describe("inverse", () => {
  it("gives A·A⁻¹ = I for a batch, rounded to the input's dtype", () => {
    const a = add(param([3, 5, 5], 1).detach(), eye(5, { dtype: "float64" }).mul(3));
    const p = matmul(a, inverse(a)).data as Float64Array;
    for (let m = 0; m < 3; m++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 5; j++)
          expect(Math.abs(p[m * 25 + i * 5 + j] - (i === j ? 1 : 0))).toBeLessThan(1e-12);
    expect(inverse(a.to("float32")).dtype).toBe("float32");
  });

  it("needs pivoting for a zero leading entry", () => {
    const a = Tensor.from([
      [0, 1],
      [1, 0],
    ]).to("float64");
    expect([...inverse(a).toFloat32Array()]).toEqual([0, 1, 1, 0]);
  });

  it("has the gradient of finite differences", () => {
    const a = param([2, 4, 4], 7);
    const shifted = () => add(a, eye(4, { dtype: "float64" }).mul(2));
    gradcheck(() => inverse(shifted()), [a]);
  });

  it("names a singular matrix and non-square input", () => {
    expect(() =>
      inverse(
        Tensor.from([
          [1, 2],
          [2, 4],
        ]).to("float64"),
      ),
    ).toThrow(ValueError);
    expect(() => inverse(Tensor.from([[1, 2, 3]]).to("float64"))).toThrow(/square/);
  });
});
