import { ValueError } from "../errors.js";
import { Module } from "../nn/module.js";
import { autocast, enableGrad, getAutocastDType, isGradEnabled, noGrad } from "../tensor/state.js";
import { unchangedSince } from "../tensor/storage-version.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  checkInputs,
  defaultPositions,
  keyMask,
  type LinearHead,
  nextTokenLinearLoss,
  nextTokenLoss,
} from "./common.js";
import { type GenerateOptions, generate } from "./generate.js";
import type { GenerationConfig } from "./generation-config.js";
import { KVCache } from "./kv-cache.js";
import type { CausalLMInputs, CausalLMOutput } from "./output.js";

export interface DecoderInputs {
  /** The token ids, or null when `embeds` are given. */
  ids: Tensor | null;
  /** [B, T, hidden] input embeddings, in place of the ids' embeddings. */
  embeds: Tensor | null;
  positions: Tensor;
  /** bool [B, 1, 1, keys] or null. */
  mask: Tensor | null;
  cache: KVCache | null;
  /** Cached positions before these ids. */
  past: number;
}

/**
 * What every decoder-only language model shares: input checks, positions, the padding
 * mask, the KV cache, the next-token loss and generate(). Subclasses give the decoder
 * body and the output head.
 */
export abstract class CausalLMBase extends Module {
  abstract get numLayers(): number;
  /**
   * The context the model was trained for: config.json's max_position_embeddings (Llama,
   * Qwen2, Mistral, Gemma, Phi-3) or n_positions (GPT-2).
   */
  abstract get contextLength(): number;
  /**
   * The number of positions the model can run at all: contextLength for learned absolute
   * positions (GPT-2), null for rotary models, which run beyond contextLength (with
   * degrading quality). generate() stops there.
   */
  abstract get maxPositions(): number | null;
  /**
   * Defaults for generate(): generation_config.json, or the token ids of config.json when
   * that file is absent (set by AutoModelForCausalLM.fromPretrained; empty for a model
   * built in code).
   */
  generationConfig: GenerationConfig = {};
  /** Final hidden states [B, T, hidden]. */
  protected abstract decode(inputs: DecoderInputs): Tensor;
  /** Logits [B, T, vocab] from hidden states. */
  protected abstract head(hidden: Tensor): Tensor;
  /**
   * The head's frozen weight (and bias) where head(h) is exactly linear(h, weight, bias),
   * else null. A loss over such a head never holds the logits (nextTokenLinearLoss).
   */
  protected abstract linearHead(): LinearHead | null;
  /** transformers' model_type (config.json), which PEFT's default targets are keyed by. */
  abstract get modelType(): string;
  /** The token embeddings of ids [B, T] (through any adapter on the embedding). */
  abstract embedTokens(ids: Tensor): Tensor;
  /** The shape of each layer's cached keys and values, and the hidden size (prefix tuning). */
  abstract get layout(): {
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    hidden: number;
  };

  forward(inputs: CausalLMInputs): CausalLMOutput {
    const op = `${this.constructor.name}.forward`;
    const ids = inputs.inputIds ?? null;
    const embeds = inputs.inputsEmbeds ?? null;
    const [batch, seq] = checkInputs(op, ids, embeds, this.layout.hidden);
    const cache = inputs.pastKeyValues ?? null;
    const past = cache?.length ?? 0;
    const mask = keyMask(op, inputs.attentionMask, batch, past + seq);
    const positions = inputs.positionIds ?? defaultPositions(past, seq);
    const hidden = this.decode({ ids, embeds, positions, mask, cache, past });
    const labels = inputs.labels ?? null;
    const plain = labels === null ? null : this.linearHead();
    let out: CausalLMOutput;
    if (plain === null) {
      out = { logits: this.head(hidden) };
      if (labels !== null) out.loss = nextTokenLoss(out.logits, labels);
    } else {
      out = lazyLogits(() => this.head(hidden), plain);
      out.loss = nextTokenLinearLoss(hidden, plain, labels!);
    }
    if (cache !== null) out.pastKeyValues = cache;
    return out;
  }

  newCache(): KVCache {
    return new KVCache(this.numLayers);
  }

  generate(inputIds: Tensor, options: GenerateOptions = {}): Tensor {
    return generate(this, inputIds, options);
  }
}

/**
 * An output whose logits are computed when first read, as the forward call would have
 * computed them (its grad mode and autocast dtype), from the hidden states it kept. A
 * training step that reads only the loss never holds them.
 */
function lazyLogits(compute: () => Tensor, head: LinearHead): CausalLMOutput {
  const grad = isGradEnabled();
  const dtype = getAutocastDType();
  const unchanged = unchangedSince(head.bias === null ? [head.weight] : [head.weight, head.bias]);
  let logits: Tensor | null = null;
  return {
    get logits(): Tensor {
      if (logits === null) {
        if (!unchanged()) {
          throw new ValueError(
            "logits: the output head's weights were written in place (merged, loaded or stepped) after this forward call, so its logits can no longer be computed; read them before changing the weights",
          );
        }
        logits = (grad ? enableGrad : noGrad)(() => autocast(dtype, compute));
      }
      return logits;
    },
    set logits(value: Tensor) {
      logits = value;
    },
  };
}
