import { ValueError } from "../errors.js";

/** What stop strings need from a tokenizer (the Tokenizer of io/tokenizer.ts has it). */
export interface TokenDecoder {
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

/**
 * Finds stop strings in a row's new tokens without decoding all of them at every step:
 * it decodes a tail window long enough to hold the last token's text plus the longest stop
 * string, plus a margin for what a window's start may lose (a space a decoder strips from
 * its first token, a UTF-8 character cut in half). Any occurrence that the newest token
 * completed lies in that window. Special tokens are decoded as their text, so a stop string
 * can name one.
 */
export class StopStringMatcher {
  private readonly longest: number;

  constructor(
    readonly stopStrings: readonly string[],
    private readonly decoder: TokenDecoder,
  ) {
    for (const s of stopStrings) {
      if (typeof s !== "string" || s.length === 0)
        throw new ValueError(
          `generate: stopStrings must be non-empty strings, got ${JSON.stringify(s)}`,
        );
    }
    this.longest = Math.max(0, ...stopStrings.map((s) => s.length));
  }

  /** Whether the text of `tokens` (a row's new tokens, newest last) contains a stop string. */
  matches(tokens: readonly number[]): boolean {
    if (tokens.length === 0 || this.stopStrings.length === 0) return false;
    const decode = (ids: readonly number[]) =>
      this.decoder.decode(ids, { skipSpecialTokens: false });
    const lastChars = decode(tokens.slice(-1)).length;
    const need = this.longest + lastChars + MARGIN_CHARS;
    // A token usually decodes to at least one character; widen when it does not.
    let width = Math.min(tokens.length, this.longest + 1 + MARGIN_TOKENS);
    let text = decode(tokens.slice(-width));
    while (text.length < need && width < tokens.length) {
      width = Math.min(tokens.length, width * 2);
      text = decode(tokens.slice(-width));
    }
    return this.stopStrings.some((s) => text.includes(s));
  }
}

/** Characters a window's start may decode differently from the whole text. */
const MARGIN_CHARS = 4;
const MARGIN_TOKENS = 4;
