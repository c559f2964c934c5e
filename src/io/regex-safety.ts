import { FileFormatError } from "../errors.js";

/**
 * Screening of the regular expressions a tokenizer.json carries (Replace normalizers and
 * decoders, Split pre-tokenizers). @huggingface/tokenizers compiles them to JavaScript
 * RegExps, a backtracking engine, where a pattern such as "(.*)*Z" takes exponential time
 * on a line without a "Z": one encode() would never return. Such patterns are refused
 * when the tokenizer is loaded.
 *
 * The rule is structural and conservative: a repeated construct (a quantifier whose
 * maximum is above 1: *, +, {n,}, {n,m} with m > 1) may not apply to a group that itself
 * contains a quantifier or an alternation. That is star height >= 2 ("(a+)+", "(.*)*",
 * "(?:a?b?)+") and repeated ambiguous alternation ("(a|a)*"). Real tokenizers' patterns
 * (GPT-2, Llama 3, Qwen2, tiktoken's cl100k/o200k, DeepSeek) quantify only single
 * atoms and character classes, so they pass. Patterns are read in the Oniguruma dialect
 * tokenizer.json uses: possessive quantifiers ("a++", "a?+") count as one quantifier,
 * while "a{1,3}+" is a repeat of a repeat (as in Oniguruma, and as @huggingface/tokenizers
 * rewrites it).
 */

interface Frame {
  /** Index of the "(" that opened the group (-1 for the whole pattern). */
  start: number;
  /** The group contains a quantifier or an alternation somewhere inside. */
  risky: boolean;
}

interface Atom {
  start: number;
  /** The atom (a group, or an already quantified atom) contains a quantifier or alternation. */
  risky: boolean;
}

const INFINITE = Number.POSITIVE_INFINITY;

/** Skips a character class starting at `i` ("["); returns the index after its "]". */
function skipClass(p: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < p.length) {
    const c = p[j];
    if (c === "\\") {
      j += 2;
      continue;
    }
    if (c === "[") {
      if (p.startsWith("[:", j)) {
        const end = p.indexOf(":]", j + 2);
        if (end >= 0 && depth > 0) {
          j = end + 2;
          continue;
        }
      }
      depth++;
      j++;
      if (p[j] === "^") j++;
      // A "]" right after the opening bracket is a literal in Oniguruma.
      if (p[j] === "]") j++;
      continue;
    }
    if (c === "]") {
      depth--;
      j++;
      if (depth === 0) return j;
      continue;
    }
    j++;
  }
  return p.length;
}

/** Skips an escape starting at `i` ("\"); returns the index after it. */
function skipEscape(p: string, i: number): number {
  const c = p[i + 1];
  if (c === undefined) return p.length;
  if ((c === "p" || c === "P" || c === "x" || c === "u" || c === "k" || c === "g") && p[i + 2]) {
    const open = p[i + 2];
    const close = open === "{" ? "}" : open === "<" ? ">" : open === "'" ? "'" : null;
    if (close !== null) {
      const end = p.indexOf(close, i + 3);
      if (end >= 0) return end + 1;
    }
    if (c === "u" && /^[0-9a-fA-F]{4}/.test(p.slice(i + 2, i + 6))) return i + 6;
    if (c === "x" && /^[0-9a-fA-F]{2}/.test(p.slice(i + 2, i + 4))) return i + 4;
  }
  // Surrogate pairs after a backslash: skip the whole code point.
  return i + 1 + (c.codePointAt(0)! > 0xffff ? 2 : 1);
}

/** A quantifier at `i`: its maximum and the index after it, or null when there is none. */
function quantifierAt(p: string, i: number): { min: number; max: number; end: number } | null {
  const c = p[i];
  if (c === "*") return { min: 0, max: INFINITE, end: i + 1 };
  if (c === "+") return { min: 1, max: INFINITE, end: i + 1 };
  if (c === "?") return { min: 0, max: 1, end: i + 1 };
  if (c === "{") {
    const m = /^\{(\d*)(,(\d*))?\}/.exec(p.slice(i, i + 40));
    if (m === null || (m[1] === "" && m[2] === undefined) || (m[1] === "" && m[3] === "")) {
      return null; // a literal "{"
    }
    const lo = m[1] === "" ? 0 : Number(m[1]);
    const max = m[2] === undefined ? lo : m[3] === "" ? INFINITE : Number(m[3]);
    return { min: lo, max, end: i + m[0].length };
  }
  return null;
}

/**
 * Returns the part of `pattern` that nests a quantifier (or an alternation) inside a
 * repeated group, or null when there is none. Syntax the scanner does not follow
 * (an unbalanced ")") is left to the regex compiler to report.
 */
export function findNestedQuantifier(pattern: string): string | null {
  const p = pattern;
  const stack: Frame[] = [{ start: -1, risky: false }];
  let atom: Atom | null = null;
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    const q = quantifierAt(p, i);
    if (q !== null && atom !== null) {
      let end = q.end;
      // A lazy "?" or possessive "+" after *, +, ? belongs to the same quantifier; after
      // {n,m} a "+" is one more repetition (Oniguruma), a "?" makes it lazy.
      if (p[end] === "?" || (p[end] === "+" && c !== "{")) end++;
      if (q.max > 1 && atom.risky) return p.slice(Math.max(atom.start, 0), end);
      // An exact count ("{3}") adds no ambiguity; every other quantifier does.
      const exact = q.min === q.max && end === q.end;
      if (!exact) stack[stack.length - 1].risky = true;
      atom = { start: atom.start, risky: atom.risky || !exact };
      i = end;
      continue;
    }
    if (q !== null && c !== "{") {
      // A quantifier with nothing to repeat: left to the compiler.
      i++;
      atom = null;
      continue;
    }
    switch (c) {
      case "\\": {
        const end = skipEscape(p, i);
        atom = { start: i, risky: false };
        i = end;
        continue;
      }
      case "[": {
        atom = { start: i, risky: false };
        i = skipClass(p, i);
        continue;
      }
      case "(": {
        if (p.startsWith("(?#", i)) {
          const end = p.indexOf(")", i);
          i = end < 0 ? p.length : end + 1;
          continue;
        }
        // Inline flags that open no group: (?i), (?-m), (?im-sx).
        const flags = /^\(\?[a-zA-Z-]*\)/.exec(p.slice(i, i + 16));
        if (flags !== null) {
          i += flags[0].length;
          atom = null;
          continue;
        }
        stack.push({ start: i, risky: false });
        atom = null;
        const prefix =
          /^\((\?(<?[=!]|>|:|[a-zA-Z-]+:|P?<[A-Za-z_][A-Za-z0-9_]*>|'[A-Za-z_][A-Za-z0-9_]*'))?/.exec(
            p.slice(i, i + 40),
          );
        i += prefix === null ? 1 : prefix[0].length;
        continue;
      }
      case ")": {
        if (stack.length === 1) {
          i++;
          atom = null;
          continue;
        }
        const frame = stack.pop()!;
        const parent = stack[stack.length - 1];
        if (frame.risky) parent.risky = true;
        atom = { start: frame.start, risky: frame.risky };
        i++;
        continue;
      }
      case "|": {
        stack[stack.length - 1].risky = true;
        atom = null;
        i++;
        continue;
      }
      default: {
        atom = { start: i, risky: false };
        i += c.codePointAt(0)! > 0xffff ? 2 : 1;
      }
    }
  }
  return null;
}

/**
 * Checks every {"Regex": ...} pattern in a tokenizer.json (outside the model's vocabulary
 * and merges): each must be a string without nested quantifiers.
 */
export function checkTokenizerPatterns(json: unknown, file: string): void {
  const visit = (node: unknown, path: string, depth: number): void => {
    if (depth > 64) throw new FileFormatError(file, `${path} is nested more than 64 levels deep`);
    if (Array.isArray(node)) {
      node.forEach((v, i) => visit(v, `${path}[${i}]`, depth + 1));
      return;
    }
    if (typeof node !== "object" || node === null) return;
    const obj = node as Record<string, unknown>;
    if ((obj.type === "Split" || obj.type === "Replace") && path !== "") {
      // @huggingface/tokenizers only warns on the console about another pattern and then
      // splits or replaces nothing, which silently changes the tokenization.
      const pat = obj.pattern as Record<string, unknown> | undefined;
      const ok =
        typeof pat === "object" &&
        pat !== null &&
        (typeof pat.Regex === "string" || typeof pat.String === "string");
      if (!ok) {
        throw new FileFormatError(
          file,
          `${path}.pattern should be {"Regex": "..."} or {"String": "..."}, found ${JSON.stringify(pat) ?? "nothing"}`,
        );
      }
    }
    for (const key of Object.keys(obj)) {
      const here = path === "" ? key : `${path}.${key}`;
      if (path === "" && key === "model") continue;
      const value = obj[key];
      if (key === "pattern" && typeof value === "object" && value !== null) {
        const pat = value as Record<string, unknown>;
        if ("Regex" in pat) {
          if (typeof pat.Regex !== "string") {
            throw new FileFormatError(
              file,
              `${here}.Regex should be a string, found ${JSON.stringify(pat.Regex)}`,
            );
          }
          const bad = findNestedQuantifier(pat.Regex);
          if (bad !== null) {
            throw new FileFormatError(
              file,
              `${here}.Regex ${JSON.stringify(pat.Regex)} is refused: ${JSON.stringify(bad)} repeats a group that itself contains a quantifier or an alternation, which takes exponential time in a backtracking regex engine`,
            );
          }
        } else if ("String" in pat && typeof pat.String !== "string") {
          throw new FileFormatError(
            file,
            `${here}.String should be a string, found ${JSON.stringify(pat.String)}`,
          );
        }
        continue;
      }
      visit(value, here, depth + 1);
    }
  };
  visit(json, "", 0);
}
