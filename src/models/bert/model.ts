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
import type { Tensor } from "../../tensor/tensor.js";
import { activation } from "../activation.js";
import { checkIds, defaultPositions, keyMask } from "../common.js";

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
  };
}

type Build = InitOptions;

class BertEmbeddings extends Module {
  constructor(config: BertConfig, o: Build) {
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
    const positions = defaultPositions(0, ids.shape[1]);
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

/** BERT encoder with its pooler; returns the last hidden states and the pooled first token. */
export class BertModel extends Module {
  readonly modelType = "bert";
  constructor(
    readonly config: BertConfig,
    o: Build = {},
  ) {
    super();
    this.registerModule("embeddings", new BertEmbeddings(config, o));
    this.registerModule("encoder", new BertEncoder(config, o));
    this.registerModule("pooler", new BertPooler(config, o));
    this.assignPaths();
  }

  forward(inputs: BertInputs): { lastHiddenState: Tensor; pooled: Tensor } {
    const [batch, seq] = checkIds("BertModel.forward", inputs.inputIds);
    const types = inputs.tokenTypeIds ?? zeros([batch, seq], { dtype: "int64" });
    const mask = keyMask("BertModel.forward", inputs.attentionMask, batch, seq);
    const e = (this.childModule("embeddings") as BertEmbeddings).forward(inputs.inputIds, types);
    const h = (this.childModule("encoder") as BertEncoder).forward(e, mask);
    return { lastHiddenState: h, pooled: this.call("pooler", h) };
  }
}

/** BERT with a classification head on the pooled output (module names as in transformers). */
export class BertForSequenceClassification extends Module {
  readonly modelType = "bert";
  constructor(
    readonly config: BertConfig,
    o: Build = {},
  ) {
    super();
    this.registerModule("bert", new BertModel(config, o));
    this.registerModule("dropout", new Dropout(config.classifierDropout));
    this.registerModule("classifier", new Linear(config.hidden, config.numLabels, o));
    this.assignPaths();
  }

  /** logits [B, numLabels]; loss: cross-entropy for integer labels, mean squared error when numLabels is 1. */
  forward(inputs: BertInputs): { logits: Tensor; loss?: Tensor } {
    const { pooled } = (this.childModule("bert") as BertModel).forward(inputs);
    const logits = this.call("classifier", this.call("dropout", pooled));
    if (inputs.labels == null) return { logits };
    if (this.config.numLabels === 1) {
      const diff = sub(squeeze(logits, 1), inputs.labels.to(logits.dtype));
      return { logits, loss: mean(mul(diff, diff)) };
    }
    return { logits, loss: crossEntropy(logits.to("float32"), inputs.labels) };
  }
}
