import { describe, expect, it } from "vitest";
import { ValueError } from "../errors.js";
import { Generator } from "../tensor/random.js";
import { compilePattern } from "./pattern.js";

const NAMES = [
  "model.layers.0.self_attn.q_proj",
  "model.layers.11.self_attn.v_proj",
  "model.layers.3.mlp.down_proj",
  "vision_tower.blocks.2.attn.qkv",
  "lm_head",
  "transformer.h.0.attn.c_attn",
  "",
  "a{b}",
  "x.y-z_1",
];

// Ordinary patterns, where JavaScript's engine (the same language as Python's re here) is the oracle.
const PATTERNS = [
  ".*\\.(q_proj|v_proj)",
  "model\\.layers\\.\\d+\\.self_attn\\.(q|k|v)_proj",
  "^(?!.*vision).*(q_proj|v_proj|qkv)",
  "(?=.*layers).*proj",
  "model\\.layers\\.[0-9]{1,2}\\.(?:mlp|self_attn)\\..*",
  ".*\\.[^.]+_proj",
  "[a-z_]+",
  "a\\{b\\}",
  "a{b}",
  "x\\.y-z_\\d",
  "[\\w.-]*",
  ".*\\bh\\b.*",
  "(ab|a)*",
  "lm_head|.*c_attn",
  "(?:model\\.)?layers\\.\\d{2}.*",
  ".+?_proj",
  "[^lm].*",
  "",
];

describe("patterns from files", () => {
  it.each(PATTERNS)("%j full-matches exactly where a backtracking engine does", (p) => {
    const js = new RegExp(`^(?:${p})$`);
    const ours = compilePattern(p);
    for (const name of NAMES) expect(ours.fullMatch(name), `${p} on ${name}`).toBe(js.test(name));
  });

  it("agrees with a backtracking engine on random patterns and strings", () => {
    const g = new Generator(7);
    const pick = <T>(xs: T[]) => xs[g.nextUint32() % xs.length];
    const atoms = ["a", "b", ".", "[ab]", "[^a]", "\\.", "(a|b)", "(?:ab)", "(a*)", "\\d"];
    const quants = ["", "", "*", "+", "?", "{1,2}", "{2}", "*?"];
    let checked = 0;
    for (let k = 0; k < 400; k++) {
      let p = "";
      const n = 1 + (g.nextUint32() % 4);
      for (let j = 0; j < n; j++) p += pick(atoms) + pick(quants);
      if (g.nextUint32() % 4 === 0) p = `${p}|${pick(atoms)}`;
      const js = new RegExp(`^(?:${p})$`);
      const ours = compilePattern(p);
      for (let t = 0; t < 8; t++) {
        let s = "";
        const len = g.nextUint32() % 6;
        for (let j = 0; j < len; j++) s += pick(["a", "b", ".", "1"]);
        expect(ours.fullMatch(s), `${p} on ${JSON.stringify(s)}`).toBe(js.test(s));
        checked++;
      }
    }
    expect(checked).toBe(3200);
  });

  // Each of these takes a backtracking engine (JavaScript's, Python's) longer than anyone waits.
  it.each([
    ["(.*)*Z", false],
    ["(.*)*(.*)*Z", false],
    ["(a+)+b", false],
    ["(a|aa)+c", false],
    ["((a*)*)*Z", false],
    ["(.*a){20}", true],
  ] as const)("%j cannot hang on a long name", (p, expected) => {
    const name = `${"a".repeat(200)}.self_attn.${"a".repeat(200)}`;
    const t0 = performance.now();
    expect(compilePattern(p).fullMatch(name)).toBe(expected);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it.each([
    ["(?<=a)b", /lookbehind is not supported/],
    ["(a)\\1", /backreferences are not supported/],
    ["(ab", /missing "\)"/],
    ["ab)", /unbalanced "\)"/],
    ["[ab", /missing "\]"/],
    ["*a", /nothing to repeat/],
    ["a{5000}", /a count above 1000/],
    ["a\\", /cannot end with a backslash/],
    ["\\q", /unknown escape \\q/],
  ])("%j is a typed error that says why", (p, why) => {
    expect(() => compilePattern(p)).toThrow(ValueError);
    expect(() => compilePattern(p)).toThrow(why);
  });
});
