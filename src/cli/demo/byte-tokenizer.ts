/**
 * A byte-level BPE tokenizer.json (GPT-2's byte-to-symbol table, three special tokens,
 * optional merges), small enough to build in code: the demo model and the tests use it.
 */
export const SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>"] as const;

export function byteSymbols(): string[] {
  // Printable bytes stand for themselves; the others map to code points from 256 up.
  const direct = new Set<number>();
  for (let b = 33; b <= 126; b++) direct.add(b);
  for (let b = 161; b <= 172; b++) direct.add(b);
  for (let b = 174; b <= 255; b++) direct.add(b);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) =>
    String.fromCodePoint(direct.has(b) ? b : 256 + extra++),
  );
}

export function byteTokenizerFiles(
  merges: readonly string[] = [],
  chatTemplate?: string,
): { tokenizer: object; config: Record<string, unknown> } {
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((t, i) => {
    vocab[t] = i;
  });
  for (const s of byteSymbols()) vocab[s] = Object.keys(vocab).length;
  for (const m of merges) vocab[m.replace(" ", "")] = Object.keys(vocab).length;
  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  };
  const config: Record<string, unknown> = {
    bos_token: "<|bos|>",
    eos_token: "<|eos|>",
    pad_token: "<|pad|>",
    model_max_length: 256,
  };
  if (chatTemplate !== undefined) config.chat_template = chatTemplate;
  return {
    tokenizer: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: SPECIAL_TOKENS.map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: null,
      decoder: byteLevel,
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges: [...merges],
      },
    },
    config,
  };
}
