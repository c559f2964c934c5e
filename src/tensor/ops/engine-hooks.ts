import { writeNumbers } from "../../backend/reference/float.js";
import { installConform } from "../autograd.js";
import { Tensor } from "../tensor.js";
import { add, cast, clone } from "./elementwise.js";
import { sumTo } from "./reduce.js";

// Autograd fits each gradient to its input (shape and dtype) with these ops.
installConform({
  sumTo,
  add,
  cast: (g, like) => cast(g, like.dtype),
  clone,
  onesLike: (t) =>
    new Tensor(writeNumbers(new Float64Array(t.size).fill(1), t.dtype), t.shape, t.dtype),
});
