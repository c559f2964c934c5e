import { ValueError } from "../../errors.js";
import { record } from "../autograd.js";
import { type Generator, generatorFor } from "../random.js";
import { Tensor } from "../tensor.js";
import { mul } from "./elementwise.js";
import { requireFloat } from "./util.js";

export interface DropoutOptions {
  /** Off (x returned unchanged) when false; default true. */
  training?: boolean;
  seed?: number | bigint;
  generator?: Generator;
}

/**
 * Zeroes each element with probability p and scales the rest by 1/(1-p). The mask comes
 * from the project's MT19937 generator (one draw per element, kept when the draw >= p),
 * so it is reproducible from a seed; it does not reproduce PyTorch's bits, whose CPU
 * bernoulli sampler differs.
 */
export function dropout(x: Tensor, p = 0.5, options: DropoutOptions = {}): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ValueError(`dropout: p must be in [0, 1], got ${p}`);
  const dtype = requireFloat("dropout", x);
  if (options.training === false || p === 0) return x;
  const g = generatorFor(options);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const keep = new Float64Array(x.size);
  for (let i = 0; i < keep.length; i++) keep[i] = g.nextFloat24() >= p ? scale : 0;
  const mask = new Tensor(keep, x.shape, "float64");
  const out = mul(x.detach(), mask.to(dtype));
  return record(out, "dropout", [x], (dy) => [mul(dy, mask.to(dy.dtype))]);
}
