/**
 * A small byte-level BPE tokenizer built in code for tests: the 256 byte symbols, a few
 * merges, and three special tokens. Its segmentation follows from the merges alone.
 */
export function byteSymbols(): string[] {
  // GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to 256+.
  const direct = new Set<number>();
  for (let b = 33; b <= 126; b++) direct.add(b);
  for (let b = 161; b <= 172; b++) direct.add(b);
  for (let b = 174; b <= 255; b++) direct.add(b);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) =>
    String.fromCodePoint(direct.has(b) ? b : 256 + extra++),
  );
}

export const MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];
export const SPECIAL = ["<|pad|>", "<|bos|>", "<|eos|>"];

export function tinyTokenizerFiles(): { tokenizer: object; config: Record<string, unknown> } {
  const vocab: Record<string, number> = {};
  SPECIAL.forEach((t, i) => {
    vocab[t] = i;
  });
  byteSymbols().forEach((s) => {
    vocab[s] = Object.keys(vocab).length;
  });
  for (const m of MERGES) vocab[m.replace(" ", "")] = Object.keys(vocab).length;
  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  };
  return {
    tokenizer: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: SPECIAL.map((content, id) => ({
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
        merges: MERGES,
      },
    },
    config: {
      bos_token: "<|bos|>",
      eos_token: "<|eos|>",
      pad_token: "<|pad|>",
      chat_template:
        "{% for m in messages %}{{ '<|bos|>' + m['role'] + '\\n' + m['content'] + '<|eos|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|bos|>assistant\\n' }}{% endif %}",
    },
  };
}
