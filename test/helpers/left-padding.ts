import { expect } from "vitest";
import type { CausalLMBase } from "../../src/models/causal-lm.js";
import { Tensor } from "../../src/tensor/tensor.js";

/**
 * Greedy generation over a batch of a 16-token row and the first 10 tokens of a second
 * row, left-padded by 6: each row must get the tokens it gets alone, so padding, the mask
 * and the positions that count real tokens only all agree with an unpadded run.
 */
export function expectLeftPaddingIsInvisible(model: CausalLMBase, rows: number[][]): void {
  const [full, other] = rows;
  const short = other.slice(0, 10);
  const alone = (prompt: number[]) =>
    (model.generate(Tensor.from([prompt]), { maxNewTokens: 6 }).toArray() as number[][])[0];
  const mask = Tensor.from([
    new Array(16).fill(1),
    [...new Array(6).fill(0), ...new Array(10).fill(1)],
  ]);
  const out = model
    .generate(Tensor.from([full, [0, 0, 0, 0, 0, 0, ...short]]), {
      maxNewTokens: 6,
      attentionMask: mask,
    })
    .toArray() as number[][];
  expect(out[1].slice(16)).toEqual(alone(short).slice(10));
  expect(out[0]).toEqual(alone(full));
}
