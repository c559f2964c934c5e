export type { DType, FloatDType, IntDType } from "../backend/dtype.js";
export { promoteTypes } from "../backend/dtype.js";
export {
  arange,
  full,
  fullLike,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  uniform,
  zeros,
  zerosLike,
} from "./creation.js";
export * from "./ops/index.js";
export { isWeightPackingEnabled, setWeightPacking } from "./ops/packed-weights.js";
export { defaultGenerator, Generator, type GeneratorState, manualSeed } from "./random.js";
export { autocast, enableGrad, getAutocastDType, isGradEnabled, noGrad } from "./state.js";
export { markWritten, overwrite } from "./storage-version.js";
export { empty, type NestedArray, Tensor } from "./tensor.js";
