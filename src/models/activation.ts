import { FileFormatError } from "../errors.js";
import { gelu, relu, silu, tanh } from "../tensor/ops/elementwise.js";
import type { Tensor } from "../tensor/tensor.js";

const ACTIVATIONS: Record<string, (x: Tensor) => Tensor> = {
  gelu: (x) => gelu(x),
  gelu_new: (x) => gelu(x, { approximate: "tanh" }),
  gelu_pytorch_tanh: (x) => gelu(x, { approximate: "tanh" }),
  relu,
  silu,
  swish: silu,
  tanh,
};

/** The activation a config names (hidden_act / activation_function). */
export function activation(name: string, file: string, field: string): (x: Tensor) => Tensor {
  const f = ACTIVATIONS[name];
  if (f === undefined) {
    throw new FileFormatError(
      file,
      `field "${field}" = "${name}" is not a supported activation; supported: ${Object.keys(ACTIVATIONS).join(", ")}`,
    );
  }
  return f;
}
