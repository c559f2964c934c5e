import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DTYPES, promoteTypes, promoteWithScalar } from "./dtype.js";

const fixture = JSON.parse(
  readFileSync(new URL("../../test/fixtures/torch/promotion.json", import.meta.url), "utf8"),
) as { tensor_tensor: Record<string, string>; tensor_scalar_mul: Record<string, string> };

describe("type promotion agrees with PyTorch", () => {
  it("for every pair of tensor dtypes", () => {
    for (const a of DTYPES) {
      for (const b of DTYPES) {
        expect(`${a},${b}=${promoteTypes(a, b)}`).toBe(
          `${a},${b}=${fixture.tensor_tensor[`${a},${b}`]}`,
        );
      }
    }
  });
  it("for a tensor and a JS number", () => {
    for (const a of DTYPES) {
      for (const v of [2, 2.5]) {
        expect(`${a},${v}=${promoteWithScalar(a, v)}`).toBe(
          `${a},${v}=${fixture.tensor_scalar_mul[`${a},${v}`]}`,
        );
      }
    }
  });
});
