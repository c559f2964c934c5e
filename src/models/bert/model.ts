import { IndexError } from "../../errors.js";
import type { ConfigReader } from "../../io/config.js";
import {
  Dropout,
  Embedding,
  type InitOptions,
  LayerNorm,
  Linear,
  ModuleList,
} from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { zeros } from "../../tensor/creation.js";
import { scaledDotProductAttention } from "../../tensor/ops/attention.js";
import { add, mul, sub, tanh } from "../../tensor/ops/elementwise.js";
import { slice, transpose } from "../../tensor/ops/layout.js";
import { crossEntropy } from "../../tensor/ops/loss.js";
import { mean } from "../../tensor/ops/reduce.js";
import { reshape, squeeze } from "../../tensor/ops/view.js";
import { Tensor } from "../../tensor/tensor.js";
import { activation } from "../activation.js";
import { checkIds, defaultPositions, keyMask } from "../common.js";

/**
 * The encoder of the BERT family. BERT and RoBERTa share every layer; the last four
 * fields are the switches between them, set by each model's config reader.
 */
export interface BertConfig {
  vocabSize: number;
  hidden: number;
  numLayers: number;
  numHeads: number;
  intermediate: number;
  act: (x: Tensor) => Tensor;
  maxPositions: number;
  typeVocabSize: number;
  eps: number;
  hiddenDropout: number;
  classifierDropout: number;
  numLabels: number;
  /** transformers' model_type ("bert", "roberta"): PEFT picks its default targets by it. */
  modelType: string;
  /** transformers' base_model_prefix: the name of the encoder module in a model with a head. */
  baseModelPrefix: string;
  /**
   * null: position ids 0..T-1 (BERT). A number: RoBERTa's padding_idx, from which position
   * ids are counted along the input ids (see `positionIdsFromInputIds`).
   */
  paddingIdx: number | null;
  /**
   * The sequence classification head. "pooler": dropout and one linear layer on the
   * pooled first token (BERT); "first-token": no pooler, RoBERTa's dense-tanh-out_proj
   * head on the first token's last hidden state.
   */
  head: "pooler" | "first-token";
}

export function parseBertConfig(c: ConfigReader): BertConfig {
  const hidden = c.int("hidden_size", undefined, 1);
  const numHeads = c.int("num_attention_heads", undefined, 1);
  if (hidden % numHeads !== 0)
    c.unsupported("num_attention_heads", `hidden_size ${hidden} is not a multiple of it`);
  if (c.has("position_embedding_type")) c.oneOf("position_embedding_type", ["absolute"] as const);
  const labels = c.raw.id2label;
  const fromLabels = typeof labels === "object" && labels !== null ? Object.keys(labels).length : 2;
  const hiddenDropout = c.number("hidden_dropout_prob", 0.1);
  return {
    vocabSize: c.int("vocab_size", undefined, 1),
    hidden,
    numLayers: c.int("num_hidden_layers", undefined, 1),
    numHeads,
    intermediate: c.int("intermediate_size", undefined, 1),
    act: activation(c.string("hidden_act", "gelu"), c.file, "hidden_act"),
    maxPositions: c.int("max_position_embeddings", 512, 1),
    typeVocabSize: c.int("type_vocab_size", 2, 1),
    eps: c.number("layer_norm_eps", 1e-12),
    hiddenDropout,
    classifierDropout: c.has("classifier_dropout") ? c.number("classifier_dropout") : hiddenDropout,
    numLabels: c.int("num_labels", fromLabels, 1),
    modelType: "bert",
    baseModelPrefix: "bert",
    paddingIdx: null,
    head: "pooler",
  };
}

/**
 * RoBERTa's position ids [B, T] int64 (transformers' create_position_ids_from_input_ids):
 * an id equal to `paddingIdx` gets `paddingIdx` and is not counted; the others get
 * paddingIdx + 1, paddingIdx + 2, ... in the order they come in their row.
 */
export function positionIdsFromInputIds(ids: Tensor, paddingIdx: number): Tensor {
  const [b, t] = checkIds("positionIdsFromInputIds", ids);
  const src = ids.data as ArrayLike<number | bigint>;
  const out = new BigInt64Array(b * t);
  for (let i = 0; i < b; i++) {
    let counted = 0;
    for (let j = 0; j < t; j++) {
      const k = i * t + j;
      const pad = Number(src[k]) === paddingIdx;
      if (!pad) counted++;
      out[k] = BigInt(pad ? paddingIdx : paddingIdx + counted);
    }
  }
  return new Tensor(out, [b, t], "int64");
}

type Build = InitOptions;

class BertEmbeddings extends Module {
  constructor(
    readonly config: BertConfig,
    o: Build,
  ) {
    super();
    this.registerModule("word_embeddings", new Embedding(config.vocabSize, config.hidden, o));
    this.registerModule(
      "position_embeddings",
      new Embedding(config.maxPositions, config.hidden, o),
    );
    this.registerModule(
      "token_type_embeddings",
      new Embedding(config.typeVocabSize, config.hidden, o),
    );
    this.registerModule("LayerNorm", new LayerNorm(config.hidden, config.eps, o));
    this.registerModule("dropout", new Dropout(config.hiddenDropout));
  }

  forward(ids: Tensor, tokenTypes: Tensor): Tensor {
    const { paddingIdx, maxPositions } = this.config;
    const positions =
      paddingIdx === null
        ? defaultPositions(0, ids.shape[1])
        : positionIdsFromInputIds(ids, paddingIdx);
    let last = -1;
    for (const p of positions.data as BigInt64Array) last = Math.max(last, Number(p));
    if (last >= maxPositions) {
      throw new IndexError(
        "BertEmbeddings",
        `${ids.shape[1]} tokens need position id ${last}, but max_position_embeddings is ${maxPositions}${paddingIdx === null ? "" : ` (positions start at padding_idx + 1 = ${paddingIdx + 1})`}`,
      );
    }
    const e = add(
      add(this.call("word_embeddings", ids), this.call("token_type_embeddings", tokenTypes)),
      this.call("position_embeddings", positions),
    );
    return this.call("dropout", this.call("LayerNorm", e));
  }
}

/** Linear, dropout, then LayerNorm of (that + residual): BertSelfOutput and BertOutput. */
class BertResidualOutput extends Module {
  constructor(inF: number, config: BertConfig, o: Build) {
    super();
    this.registerModule("dense", new Linear(inF, config.hidden, o));
    this.registerModule("LayerNorm", new LayerNorm(config.hidden, config.eps, o));
    this.registerModule("dropout", new Dropout(config.hiddenDropout));
  }

  forward(x: Tensor, residual: Tensor): Tensor {
    return this.call("LayerNorm", add(this.call("dropout", this.call("dense", x)), residual));
  }
}

class BertSelfAttention extends Module {
  constructor(
    readonly config: BertConfig,
    o: Build,
  ) {
    super();
    for (const name of ["query", "key", "value"])
      this.registerModule(name, new Linear(config.hidden, config.hidden, o));
  }

  forward(x: Tensor, mask: Tensor | null): Tensor {
    const [b, t, e] = x.shape;
    const nh = this.config.numHeads;
    const heads = (name: string) =>
      transpose(reshape(this.call(name, x), [b, t, nh, e / nh]), 1, 2);
    const attn = scaledDotProductAttention(heads("query"), heads("key"), heads("value"), {
      attnMask: mask,
    });
    return reshape(transpose(attn, 1, 2), [b, t, e]);
  }
}

class BertAttention extends Module {
  constructor(config: BertConfig, o: Build) {
    super();
    this.registerModule("self", new BertSelfAttention(config, o));
    this.registerModule("output", new BertResidualOutput(config.hidden, config, o));
  }

  forward(x: Tensor, mask: Tensor | null): Tensor {
    const a = (this.childModule("self") as BertSelfAttention).forward(x, mask);
    return (this.childModule("output") as BertResidualOutput).forward(a, x);
  }
}

class BertIntermediate extends Module {
  constructor(
    readonly config: BertConfig,
    o: Build,
  ) {
    super();
    this.registerModule("dense", new Linear(config.hidden, config.intermediate, o));
  }

  forward(x: Tensor): Tensor {
    return this.config.act(this.call("dense", x));
  }
}

class BertLayer extends Module {
  constructor(config: BertConfig, o: Build) {
    super();
    this.registerModule("attention", new BertAttention(config, o));
    this.registerModule("intermediate", new BertIntermediate(config, o));
    this.registerModule("output", new BertResidualOutput(config.intermediate, config, o));
  }

  forward(x: Tensor, mask: Tensor | null): Tensor {
    const a = (this.childModule("attention") as BertAttention).forward(x, mask);
    return (this.childModule("output") as BertResidualOutput).forward(
      this.call("intermediate", a),
      a,
    );
  }
}

class BertPooler extends Module {
  constructor(config: BertConfig, o: Build) {
    super();
    this.registerModule("dense", new Linear(config.hidden, config.hidden, o));
  }

  /** tanh(dense(hidden state of the first token)). */
  forward(h: Tensor): Tensor {
    return tanh(this.call("dense", squeeze(slice(h, 1, 0, 1), 1)));
  }
}

class BertEncoder extends Module {
  constructor(config: BertConfig, o: Build) {
    super();
    this.registerModule(
      "layer",
      new ModuleList(Array.from({ length: config.numLayers }, () => new BertLayer(config, o))),
    );
  }

  forward(h: Tensor, mask: Tensor | null): Tensor {
    for (const layer of (this.childModule("layer") as ModuleList<BertLayer>).items)
      h = layer.forward(h, mask);
    return h;
  }
}

export interface BertInputs {
  inputIds: Tensor;
  attentionMask?: Tensor | null;
  /** Segment ids, default 0. */
  tokenTypeIds?: Tensor | null;
  labels?: Tensor | null;
}

/**
 * The BERT-family encoder (BertModel, RobertaModel), with its pooler unless
 * `addPoolingLayer` is false; returns the last hidden states and the pooled first token.
 */
export class BertModel extends Module {
  readonly modelType: string;
  constructor(
    readonly config: BertConfig,
    o: Build = {},
    addPoolingLayer = true,
  ) {
    super();
    this.modelType = config.modelType;
    this.registerModule("embeddings", new BertEmbeddings(config, o));
    this.registerModule("encoder", new BertEncoder(config, o));
    if (addPoolingLayer) this.registerModule("pooler", new BertPooler(config, o));
    this.assignPaths();
  }

  forward(inputs: BertInputs): { lastHiddenState: Tensor; pooled: Tensor | null } {
    const [batch, seq] = checkIds("BertModel.forward", inputs.inputIds);
    const types = inputs.tokenTypeIds ?? zeros([batch, seq], { dtype: "int64" });
    const mask = keyMask("BertModel.forward", inputs.attentionMask, batch, seq);
    const e = (this.childModule("embeddings") as BertEmbeddings).forward(inputs.inputIds, types);
    const h = (this.childModule("encoder") as BertEncoder).forward(e, mask);
    const pooled = this.childModule("pooler") === undefined ? null : this.call("pooler", h);
    return { lastHiddenState: h, pooled };
  }
}

/**
 * transformers' RobertaClassificationHead: out_proj(tanh(dense(h[:, 0]))), with a dropout
 * (classifier_dropout, else hidden_dropout_prob) before each of the two linear layers.
 */
export class FirstTokenClassificationHead extends Module {
  constructor(config: BertConfig, o: Build = {}) {
    super();
    this.registerModule("dense", new Linear(config.hidden, config.hidden, o));
    this.registerModule("dropout", new Dropout(config.classifierDropout));
    this.registerModule("out_proj", new Linear(config.hidden, config.numLabels, o));
  }

  /** Logits [B, numLabels] from the last hidden states [B, T, hidden]. */
  forward(h: Tensor): Tensor {
    const first = squeeze(slice(h, 1, 0, 1), 1);
    const x = tanh(this.call("dense", this.call("dropout", first)));
    return this.call("out_proj", this.call("dropout", x));
  }
}

/**
 * A BERT-family encoder with a sequence classification head, module names as in
 * transformers: the encoder under `config.baseModelPrefix`, the head under "classifier".
 */
export class EncoderForSequenceClassification extends Module {
  readonly modelType: string;
  constructor(
    readonly config: BertConfig,
    o: Build = {},
  ) {
    super();
    this.modelType = config.modelType;
    const pooler = config.head === "pooler";
    this.registerModule(config.baseModelPrefix, new BertModel(config, o, pooler));
    if (pooler) {
      this.registerModule("dropout", new Dropout(config.classifierDropout));
      this.registerModule("classifier", new Linear(config.hidden, config.numLabels, o));
    } else {
      this.registerModule("classifier", new FirstTokenClassificationHead(config, o));
    }
    this.assignPaths();
  }

  /** logits [B, numLabels]; loss: cross-entropy for integer labels, mean squared error when numLabels is 1. */
  forward(inputs: BertInputs): { logits: Tensor; loss?: Tensor } {
    const encoder = this.childModule(this.config.baseModelPrefix) as BertModel;
    const { lastHiddenState, pooled } = encoder.forward(inputs);
    const logits =
      pooled === null
        ? this.call("classifier", lastHiddenState)
        : this.call("classifier", this.call("dropout", pooled));
    if (inputs.labels == null) return { logits };
    if (this.config.numLabels === 1) {
      const diff = sub(squeeze(logits, 1), inputs.labels.to(logits.dtype));
      return { logits, loss: mean(mul(diff, diff)) };
    }
    return { logits, loss: crossEntropy(logits.to("float32"), inputs.labels) };
  }
}

/** BERT with a classification head on the pooled output. */
export class BertForSequenceClassification extends EncoderForSequenceClassification {}
