import type { Backend } from "../backend.js";
import { attention, attentionGrad } from "./attention.js";
import { binary, cast, siluMul, siluMulGrad, unary, unaryGrad, where } from "./elementwise.js";
import { embedding, embeddingGrad, gather, scatterAdd } from "./indexing.js";
import { concat, permute, slice, sliceScatter } from "./layout.js";
import { crossEntropy, crossEntropyGrad } from "./loss.js";
import { matmul } from "./matmul.js";
import { norm, normGrad } from "./norm.js";
import { dequantize4bit } from "./quant.js";
import { reduce } from "./reduce.js";
import { rope } from "./rope.js";
import { softmax, softmaxGrad } from "./softmax.js";

/** Pure TypeScript kernels for every op and dtype: the oracle faster backends are tested against. */
export const referenceBackend: Backend = {
  name: "reference",
  cast,
  unary,
  unaryGrad,
  siluMul,
  siluMulGrad,
  binary,
  where,
  reduce,
  matmul,
  softmax,
  softmaxGrad,
  norm,
  normGrad,
  rope,
  attention,
  attentionGrad,
  crossEntropy,
  crossEntropyGrad,
  permute,
  slice,
  sliceScatter,
  concat,
  gather,
  scatterAdd,
  embedding,
  embeddingGrad,
  dequantize4bit,
};
