import type { FloatDType } from "../../../backend/dtype.js";
import { ShapeError, ValueError } from "../../../errors.js";
import type { CausalLMBase } from "../../../models/causal-lm.js";
import { ModuleDict } from "../../../nn/containers.js";
import type { Module } from "../../../nn/module.js";
import { fmt } from "../../../tensor/shape.js";
import { noGrad } from "../../../tensor/state.js";
import { overwrite } from "../../../tensor/storage-version.js";
import { Tensor } from "../../../tensor/tensor.js";
import { adapterDTypeOver } from "../adapter-layer.js";
import type { AdapterConfigBase, InjectOptions, Tuner } from "../tuner.js";
import type { VirtualTokenEncoder } from "./encoder.js";
import {
  causalLM,
  PROMPT_ENCODER,
  promptEncoders,
  type VirtualTokenKind,
} from "./virtual-tokens.js";

/** The config values every prompt-learning method has (PromptLearningConfig). */
export interface PromptLearningValues extends AdapterConfigBase {
  inferenceMode: boolean;
  numVirtualTokens: number | null;
  tokenDim: number | null;
  numTransformerSubmodules: number | null;
  numAttentionHeads: number | null;
  numLayers: number | null;
}

/** PEFT's sizes for virtual tokens that enter as embeddings: the model's hidden size, layers, heads. */
export function embeddingSizes(config: PromptLearningValues, model: CausalLMBase): void {
  const { hidden, layers, heads } = model.layout;
  config.tokenDim ??= hidden;
  config.numLayers ??= layers;
  config.numAttentionHeads ??= heads;
}

/** The key PEFT saves the virtual tokens' values under. */
export const PROMPT_KEY = "prompt_embeddings";
/** Keys of an encoder's own tensors in a checkpoint's run state (PEFT's file has its output only). */
const ENCODER_STATE = "prompt_encoder_state/";

function encoderOf(model: Module, name: string): VirtualTokenEncoder {
  const e = promptEncoders(model)?.get(name);
  if (e === undefined) throw new ValueError(`no prompt-learning adapter named "${name}"`);
  return e;
}

/**
 * A prompt-learning method's tuner: the encoder goes in the model's `prompt_encoder`
 * (no layer is wrapped) and its values are saved as `prompt_embeddings`. `fill` sets the
 * model's sizes in the config, as PEFT does; `encoder` builds the encoder for training
 * (with its head) or, for a loaded adapter (inference mode), as the table of saved values.
 */
export function promptTuner<C extends PromptLearningValues>(
  method: string,
  kind: VirtualTokenKind,
  fill: (config: C, model: CausalLMBase) => void,
  encoder: (config: C, model: CausalLMBase, dtype: FloatDType) => VirtualTokenEncoder,
): Tuner<C> {
  return {
    virtualTokens: kind,
    inject(model: Module, config: C, adapterName: string, options: InjectOptions): void {
      const lm = causalLM(model, method);
      if (config.taskType !== null && config.taskType !== "CAUSAL_LM")
        throw new ValueError(
          `${method}: task_type ${JSON.stringify(config.taskType)} is not supported; peft-ts adds virtual tokens to causal language models (CAUSAL_LM)`,
        );
      if (config.numVirtualTokens === null)
        throw new ValueError(`${method}: numVirtualTokens is required`);
      // The encoder follows the dtype rule of adapters, over the token embeddings' dtype.
      const embedded = noGrad(() => lm.embedTokens(Tensor.from([[0]], [1, 1], "int64")));
      const dtype = adapterDTypeOver(embedded.dtype as FloatDType, options);
      config.numTransformerSubmodules ??= 1;
      fill(config, lm);
      let dict = promptEncoders(model);
      if (dict === null) {
        dict = new ModuleDict<VirtualTokenEncoder>();
        model.registerModule(PROMPT_ENCODER, dict);
      }
      dict.set(adapterName, encoder(config, lm, dtype));
    },
    extraState(model, _config, adapterName): Map<string, Tensor> {
      const values = noGrad(() => encoderOf(model, adapterName).values()).detach();
      return new Map([[PROMPT_KEY, values]]);
    },
    loadExtraState(model, _config, adapterName, tensors): string[] {
      const t = tensors.get(PROMPT_KEY);
      if (t === undefined) return [];
      const e = encoderOf(model, adapterName);
      if (e.hasHead) {
        const own = [...tensors.keys()].filter((k) => k.startsWith(ENCODER_STATE));
        if (own.length > 0) {
          const mine = new Map(e.namedParameters());
          for (const k of own) {
            const target = mine.get(k.slice(ENCODER_STATE.length));
            if (target === undefined || target.shape.join() !== tensors.get(k)!.shape.join())
              throw new ShapeError("resume", `${k} does not fit this ${method} encoder`);
            overwrite(target.data, tensors.get(k)!.to(target.dtype).data);
          }
          return [PROMPT_KEY, ...own];
        }
        throw new ValueError(
          `${method}: the saved prompt_embeddings are the encoder's output and cannot be loaded into an encoder that is training (PEFT saves no encoder weights); load the adapter with fromPretrained instead`,
        );
      }
      if (t.shape.join() !== e.table.shape.join())
        throw new ShapeError(
          "loadAdapter",
          `prompt_embeddings has shape ${fmt(t.shape)} but the adapter expects ${fmt(e.table.shape)}`,
        );
      overwrite(e.table.data, t.to(e.table.dtype).data);
      return [PROMPT_KEY];
    },
    training(model, _config, adapterName) {
      return {
        // A head's weights are not in PEFT's file: checkpoints carry them for an exact resume.
        runState() {
          const e = encoderOf(model, adapterName);
          const tensors = new Map<string, Tensor>();
          if (e.hasHead)
            for (const [k, t] of e.namedParameters())
              tensors.set(`weights/${ENCODER_STATE}${k}`, t);
          return { json: null, tensors };
        },
      };
    },
  };
}
