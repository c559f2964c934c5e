import { byteTokenizerFiles } from "../../src/cli/demo/byte-tokenizer.js";

/** The byte-level tokenizer with a few merges whose segmentation the tests reason about. */
export const MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];

export function tinyTokenizerFiles(): { tokenizer: object; config: Record<string, unknown> } {
  return byteTokenizerFiles(
    MERGES,
    "{% for m in messages %}{{ '<|bos|>' + m['role'] + '\\n' + m['content'] + '<|eos|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|bos|>assistant\\n' }}{% endif %}",
  );
}
