export type { Backend } from "./backend/backend.js";
export {
  type BackendInfo,
  backendInfo,
  type CpuFeatures,
  startBackend,
} from "./backend/info.js";
export { availableBackends, getBackend, registerBackend, setBackend } from "./backend/registry.js";
export {
  createWasmBackend,
  type WasmBackend,
  type WasmBackendOptions,
} from "./backend/wasm/index.js";
/** The LoRA settings of the embedded demo (`peft demo` and the browser page). */
export { DEMO_LORA } from "./cli/demo/lora.js";
export * from "./errors.js";
export { Checkpoint } from "./io/checkpoint.js";
export { ConfigReader } from "./io/config.js";
export { DirectoryFiles } from "./io/files/directory.js";
export {
  type FetchFilesOptions,
  type FetchProgress,
  fetchFiles,
  fetchModelFiles,
  filesFromBlobs,
  type NamedBlob,
} from "./io/files/fetch.js";
export { type FolderFiles, MemoryFiles, type ModelFiles } from "./io/files/model-files.js";
export { hubCacheDir, resolveModelDir } from "./io/model-dir.js";
export { loadSafetensors, SafetensorsFile } from "./io/safetensors/reader.js";
export { saveSafetensors, serializeSafetensors } from "./io/safetensors/writer.js";
export { type BatchEncoding, type ChatMessage, Tokenizer } from "./io/tokenizer.js";
export {
  AutoModelForCausalLM,
  AutoModelForSequenceClassification,
  type CausalLM,
  type FromPretrainedOptions,
  type SequenceClassifier,
} from "./models/auto.js";
export {
  type BertConfig,
  BertForSequenceClassification,
  BertModel,
  positionIdsFromInputIds,
} from "./models/bert/model.js";
export { type DecoderConfig, llamaConfig } from "./models/decoder/config.js";
export {
  DecoderForCausalLM,
  /** The decoder under the name earlier releases exported. */
  DecoderForCausalLM as LlamaForCausalLM,
} from "./models/decoder/model.js";
export { type GenerateOptions, generate, type TokenStreamer } from "./models/generate.js";
export {
  type GenerationConfig,
  loadGenerationConfig,
  parseGenerationConfig,
} from "./models/generation-config.js";
export { GPT2LMHeadModel } from "./models/gpt2/model.js";
export { KVCache } from "./models/kv-cache.js";
export type { CausalLMInputs, CausalLMOutput } from "./models/output.js";
export { RobertaForSequenceClassification } from "./models/roberta/model.js";
export { StopStringMatcher, type TokenDecoder } from "./models/stop-strings.js";
export { ModuleDict, ParameterDict } from "./nn/containers.js";
export { Conv1D, Dropout, Embedding, LayerNorm, Linear, ModuleList, RMSNorm } from "./nn/layers.js";
export { Module } from "./nn/module.js";
export { ModulesToSaveWrapper } from "./peft/modules-to-save.js";
export {
  type BaseModel,
  getPeftModel,
  PeftModel,
  type PeftOptions,
  toConfig,
} from "./peft/peft-model.js";
export { AdapterLayer } from "./peft/tuners/adapter-layer.js";
export { LoraConfig, type LoraConfigFields } from "./peft/tuners/lora/config.js";
export { LoraLayer } from "./peft/tuners/lora/layer.js";
export { VeraConfig, type VeraConfigFields } from "./peft/tuners/vera/config.js";
export { VeraLayer } from "./peft/tuners/vera/layer.js";
export {
  dequantize4bit,
  type NestedAbsmax,
  type QuantState,
  quantize4bit,
} from "./quant/blockwise.js";
export { FP4_CODE, NF4_CODE, type QuantType } from "./quant/codes.js";
export {
  Linear4bit,
  QUANT_STORAGES,
  type Quant4bitOptions,
  type QuantStorage,
} from "./quant/linear4bit.js";
export type { QuantizationOptions } from "./quant/load.js";
export { dequantizedWeight, linear4bit } from "./quant/matmul4bit.js";
export * from "./tensor/index.js";
export type { CheckpointFiles } from "./train/checkpoint-files.js";
export { clipGradNorm } from "./train/clip.js";
export {
  type Batch,
  collate,
  type DatasetBytes,
  type Example,
  type LoadDatasetOptions,
  loadDataset,
  pack,
  readJsonl,
  type TokenizeOptions,
  tokenizeRecord,
} from "./train/data.js";
export { GradScaler, type GradScalerState } from "./train/grad-scaler.js";
export { AdamW, type AdamWOptions } from "./train/optim/adamw.js";
export { Optimizer } from "./train/optim/optimizer.js";
export { SGD, type SGDOptions } from "./train/optim/sgd.js";
export { learningRateAt, type ScheduleName, type ScheduleOptions } from "./train/schedule.js";
export {
  type StepMetrics,
  Trainer,
  type TrainerCallbacks,
  type TrainingArguments,
  TrainingError,
} from "./train/trainer.js";
