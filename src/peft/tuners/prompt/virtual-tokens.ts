import { ShapeError, ValueError } from "../../../errors.js";
import type { CausalLMBase } from "../../../models/causal-lm.js";
import type { KVCache } from "../../../models/kv-cache.js";
import type {
  CausalLanguageModel,
  CausalLMInputs,
  CausalLMOutput,
} from "../../../models/output.js";
import { ModuleDict } from "../../../nn/containers.js";
import type { Module } from "../../../nn/module.js";
import { full } from "../../../tensor/creation.js";
import { cast } from "../../../tensor/ops/elementwise.js";
import { concat, permute, slice } from "../../../tensor/ops/layout.js";
import { broadcastTo, reshape, unsqueeze } from "../../../tensor/ops/view.js";
import { fmt } from "../../../tensor/shape.js";
import { Tensor } from "../../../tensor/tensor.js";
import type { VirtualTokenEncoder } from "./encoder.js";

/**
 * Where virtual tokens enter: "embeddings" are prepended to the input embeddings (prompt
 * tuning, P-tuning); a "prefix" is keys and values in front of every layer's (prefix tuning).
 */
export type VirtualTokenKind = "embeddings" | "prefix";

/** The root module's child holding every prompt-learning adapter's encoder, by adapter name. */
export const PROMPT_ENCODER = "prompt_encoder";

export function promptEncoders(model: Module): ModuleDict<VirtualTokenEncoder> | null {
  const d = model.namedChildren().find(([n]) => n === PROMPT_ENCODER)?.[1];
  return d instanceof ModuleDict ? (d as ModuleDict<VirtualTokenEncoder>) : null;
}

/** The causal LM a prompt-learning adapter goes on; other models get a typed error. */
export function causalLM(model: Module, method: string): CausalLMBase {
  const m = model as unknown as Partial<CausalLMBase>;
  if (typeof m.embedTokens !== "function" || m.layout === undefined)
    throw new ValueError(
      `${method} needs a causal language model (a decoder such as Llama, Gemma or Phi-3, or GPT-2), got ${model.constructor.name}`,
    );
  return model as CausalLMBase;
}

const ones = (b: number, t: number) => full([b, t], 1, { dtype: "int64" });

/** The first `V` columns of a [B, V + ...] mask: all ones, then the given mask (or ones). */
function extendMask(mask: Tensor | null | undefined, b: number, v: number, t: number): Tensor {
  return concat([ones(b, v), mask == null ? ones(b, t) : mask.to("int64")], 1);
}

/** The prompt's values repeated over the batch, in `dtype`: [B, V, width]. */
function perRow(values: Tensor, batch: number, dtype: Tensor["dtype"]): Tensor {
  return broadcastTo(unsqueeze(cast(values, dtype), 0), [batch, ...values.shape]);
}

/**
 * A cache holding the prefix: values [V, 2·L·H·D] viewed as [V, 2L, H, D]; layer l's keys
 * are [:, 2l] and its values [:, 2l + 1], each as [B, H, V, D] (no rotary embedding).
 */
function prefixCache(model: CausalLMBase, values: Tensor, batch: number, cache: KVCache): void {
  const { layers, kvHeads, headDim } = model.layout;
  const [v, width] = values.shape;
  if (width !== 2 * layers * kvHeads * headDim)
    throw new ShapeError(
      "prefix tuning",
      `prompt_embeddings of shape ${fmt(values.shape)} do not fit this model: expected [${v}, ${2 * layers * kvHeads * headDim}] (2 · ${layers} layers · ${kvHeads} key/value heads · ${headDim})`,
    );
  const kv = permute(reshape(values, [v, 2 * layers, kvHeads, headDim]), [1, 2, 0, 3]);
  const entry = (i: number) => broadcastTo(slice(kv, 0, i, i + 1), [batch, kvHeads, v, headDim]);
  for (let l = 0; l < layers; l++) cache.update(l, entry(2 * l), entry(2 * l + 1));
}

function checkEmbeddingWidth(model: CausalLMBase, values: Tensor): void {
  if (values.shape[1] !== model.layout.hidden)
    throw new ShapeError(
      "prompt tuning",
      `prompt_embeddings of shape ${fmt(values.shape)} do not fit this model: expected [${values.shape[0]}, ${model.layout.hidden}] (the hidden size)`,
    );
}

/**
 * PEFT's forward with virtual tokens. Embeddings: the prompt goes before the token
 * embeddings, the mask gets V ones and the labels V ignored entries in front, and the
 * logits cover the V virtual positions too ([B, V + T, vocab]). Prefix: the cache starts
 * with the prefix, the mask gets V ones, and the real tokens sit at positions V.. .
 */
export function forwardWithVirtualTokens(
  model: CausalLMBase,
  encoder: VirtualTokenEncoder,
  kind: VirtualTokenKind,
  inputs: CausalLMInputs,
  warn: (message: string) => void,
): CausalLMOutput {
  const ids = inputs.inputIds;
  if (ids == null)
    throw new ValueError(
      "prompt learning: forward needs inputIds (inputsEmbeds are not supported)",
    );
  if (inputs.pastKeyValues != null)
    throw new ValueError(
      "prompt learning: forward takes no pastKeyValues (generate() handles the cache)",
    );
  if (inputs.positionIds != null)
    warn(
      "prompt learning: positionIds are ignored (as in PEFT); positions count the virtual tokens",
    );
  const [b, t] = ids.shape;
  const values = encoder.values();
  const v = values.shape[0];
  const attentionMask =
    inputs.attentionMask == null ? null : extendMask(inputs.attentionMask, b, v, t);
  if (kind === "embeddings") {
    checkEmbeddingWidth(model, values);
    const embeds = model.embedTokens(ids);
    const labels =
      inputs.labels == null
        ? null
        : concat([full([b, v], -100, { dtype: inputs.labels.dtype }), inputs.labels], 1);
    return model.forward({
      inputsEmbeds: concat([perRow(values, b, embeds.dtype), embeds], 1),
      attentionMask,
      labels,
    });
  }
  const cache = model.newCache();
  prefixCache(model, values, b, cache);
  const out = model.forward({
    inputIds: ids,
    attentionMask: attentionMask ?? extendMask(null, b, v, t),
    labels: inputs.labels,
    pastKeyValues: cache,
  });
  delete out.pastKeyValues;
  return out;
}

/**
 * The model as generate() sees it with virtual tokens: the first step puts them in front
 * (embeddings) or in the cache (prefix); every step's mask gets V leading ones and its
 * positions move V along. The output holds the prompt's ids and the new ones only.
 */
export function withVirtualTokens(
  model: CausalLMBase & CausalLanguageModel,
  encoder: VirtualTokenEncoder,
  kind: VirtualTokenKind,
): CausalLanguageModel {
  const v = encoder.tokens;
  return {
    get training() {
      return model.training;
    },
    train: (mode?: boolean) => model.train(mode),
    generationConfig: model.generationConfig,
    maxPositions: model.maxPositions == null ? model.maxPositions : model.maxPositions - v,
    newCache: () => model.newCache(),
    forward(inputs: CausalLMInputs): CausalLMOutput {
      const ids = inputs.inputIds!;
      const cache = inputs.pastKeyValues!;
      const [b, t] = ids.shape;
      const first = cache.length === 0;
      const past = first ? 0 : cache.length - v;
      const attentionMask = extendMask(inputs.attentionMask, b, v, past + t);
      const shifted = inputs.positionIds == null ? null : shift(inputs.positionIds, v);
      const values = first ? encoder.values() : null;
      if (first && kind === "embeddings") {
        checkEmbeddingWidth(model, values!);
        const embeds = model.embedTokens(ids);
        const virtual = Tensor.from(
          Array.from({ length: b * v }, (_, i) => i % v),
          [b, v],
          "int64",
        );
        return model.forward({
          inputsEmbeds: concat([perRow(values!, b, embeds.dtype), embeds], 1),
          attentionMask,
          positionIds: shifted === null ? null : concat([virtual, shifted], 1),
          pastKeyValues: cache,
        });
      }
      if (first) prefixCache(model, values!, b, cache);
      return model.forward({
        inputIds: ids,
        attentionMask,
        positionIds: shifted,
        pastKeyValues: cache,
      });
    },
  };
}

function shift(positions: Tensor, by: number): Tensor {
  const p = positions.to("int64").toFlatNumbers();
  return Tensor.from(
    p.map((x) => x + by),
    positions.shape,
    "int64",
  );
}
