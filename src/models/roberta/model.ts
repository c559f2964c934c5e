import { FileFormatError } from "../../errors.js";
import type { ConfigReader } from "../../io/config.js";
import {
  type BertConfig,
  EncoderForSequenceClassification,
  parseBertConfig,
} from "../bert/model.js";

/**
 * RoBERTa is BERT's encoder with three switches: position ids counted from the input ids
 * after padding_idx (= pad_token_id), no pooler, and a dense-tanh-out_proj head on the
 * first token. Every other field is read as for BERT, with the same defaults (those of
 * transformers' RobertaConfig are BERT's, pad_token_id 1 aside).
 */
export function parseRobertaConfig(c: ConfigReader): BertConfig {
  const base = parseBertConfig(c);
  if (c.raw.pad_token_id === null) {
    throw new FileFormatError(
      c.file,
      `field "pad_token_id" should be an integer >= 0, found null: RoBERTa counts its position ids from it`,
    );
  }
  const pad = c.int("pad_token_id", 1);
  if (pad >= base.vocabSize) {
    throw new FileFormatError(
      c.file,
      `field "pad_token_id" = ${pad} should be below vocab_size ${base.vocabSize}`,
    );
  }
  if (pad + 1 >= base.maxPositions) {
    throw new FileFormatError(
      c.file,
      `field "max_position_embeddings" = ${base.maxPositions} leaves no position for a token: RoBERTa's positions start at pad_token_id + 1 = ${pad + 1}`,
    );
  }
  return {
    ...base,
    modelType: "roberta",
    baseModelPrefix: "roberta",
    paddingIdx: pad,
    head: "first-token",
  };
}

/** RoBERTa with its classification head (module names as in transformers). */
export class RobertaForSequenceClassification extends EncoderForSequenceClassification {}
