import { ValueError } from "../errors.js";

/**
 * Regular expressions read from files (PEFT's target_modules, exclude_modules,
 * rank_pattern keys, layers_pattern) matched in time polynomial in the input, never
 * exponential: the pattern is compiled to an NFA and run as a set of threads (Thompson /
 * Pike), so "(.*)*Z" cannot hang a process the way a backtracking engine does.
 *
 * The syntax is the common subset of Python's `re` and JavaScript's: literals, `.`,
 * classes `[a-z_]`/`[^...]`, escapes (\d \w \s and their negations, \b \B, \A \Z,
 * \n \t \xHH \uHHHH, escaped punctuation), groups `( )` `(?: )` `(?P<n> )` `(?<n> )`,
 * lookahead `(?= )` `(?! )`, alternation, and the quantifiers * + ? {m} {m,} {m,n}
 * (lazy and possessive forms match the same set of strings). Backreferences and
 * lookbehind are refused with a typed error.
 */
export interface Pattern {
  readonly source: string;
  /** Whether the whole string matches (Python's re.fullmatch). */
  fullMatch(s: string): boolean;
}

type CharTest = (c: number) => boolean;

type Node =
  | { kind: "char"; test: CharTest }
  | { kind: "seq"; items: Node[] }
  | { kind: "alt"; options: Node[] }
  | { kind: "repeat"; node: Node; min: number; max: number }
  | { kind: "assert"; what: "start" | "end" | "word" | "notWord" }
  | { kind: "look"; node: Node; negate: boolean };

/** Bounds a counted repetition so the compiled program stays small. */
const MAX_COUNT = 1000;
const MAX_PROGRAM = 100_000;

const isWord = (c: number) =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

class Parser {
  private i = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation();
    if (this.i < this.src.length) this.fail(`unbalanced ")" at position ${this.i}`);
    return node;
  }

  private fail(why: string): never {
    throw new ValueError(`pattern ${JSON.stringify(this.src)}: ${why}`);
  }

  private peek(): string {
    return this.src[this.i];
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.peek() === "|") {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { kind: "alt", options };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.peek() !== "|" && this.peek() !== ")") {
      items.push(this.quantified(this.atom()));
    }
    return { kind: "seq", items };
  }

  private quantified(node: Node): Node {
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === "*") [min, max] = [0, Infinity];
      else if (c === "+") [min, max] = [1, Infinity];
      else if (c === "?") [min, max] = [0, 1];
      else if (c === "{") {
        const m = /^\{(\d*)(,(\d*))?\}/.exec(this.src.slice(this.i));
        if (m === null || (m[1] === "" && m[2] === undefined)) return node; // a literal "{"
        min = m[1] === "" ? 0 : Number(m[1]);
        max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
        if (min > MAX_COUNT || (max !== Infinity && max > MAX_COUNT))
          this.fail(`a count above ${MAX_COUNT} in "${m[0]}" is not supported`);
        if (max < min) this.fail(`"${m[0]}": the maximum is below the minimum`);
        this.i += m[0].length - 1;
      } else return node;
      this.i++;
      if (node.kind === "assert" || node.kind === "look") this.fail("nothing to repeat");
      if (this.peek() === "?" || this.peek() === "+") this.i++; // lazy / possessive: same language
      node = { kind: "repeat", node, min, max };
    }
  }

  private atom(): Node {
    const c = this.src[this.i++];
    switch (c) {
      case "(":
        return this.group();
      case "[":
        return { kind: "char", test: this.charClass() };
      case ".":
        return { kind: "char", test: (x) => x !== 10 };
      case "^":
        return { kind: "assert", what: "start" };
      case "$":
        return { kind: "assert", what: "end" };
      case "\\":
        return this.escape(false) as Node;
      case "*":
      case "+":
      case "?":
        return this.fail(`nothing to repeat at position ${this.i - 1}`);
      default: {
        const code = c.charCodeAt(0);
        return { kind: "char", test: (x) => x === code };
      }
    }
  }

  private group(): Node {
    let look: boolean | null = null;
    if (this.src.startsWith("?:", this.i)) this.i += 2;
    else if (this.src.startsWith("?=", this.i) || this.src.startsWith("?!", this.i)) {
      look = this.src[this.i + 1] === "!";
      this.i += 2;
    } else if (this.src.startsWith("?<=", this.i) || this.src.startsWith("?<!", this.i)) {
      this.fail("lookbehind is not supported");
    } else if (this.src.startsWith("?P<", this.i) || this.src.startsWith("?<", this.i)) {
      const end = this.src.indexOf(">", this.i);
      if (end < 0) this.fail("unterminated group name");
      this.i = end + 1;
    } else if (this.peek() === "?") {
      this.fail(`the group syntax "(${this.src.slice(this.i, this.i + 3)}" is not supported`);
    }
    const node = this.alternation();
    if (this.src[this.i++] !== ")") this.fail('missing ")"');
    return look === null ? node : { kind: "look", node, negate: look };
  }

  /** An escape after "\"; inside a class only character tests are allowed. */
  private escape(inClass: boolean): Node | CharTest {
    const c = this.src[this.i++];
    if (c === undefined) this.fail("a pattern cannot end with a backslash");
    const test = (t: CharTest): Node | CharTest => (inClass ? t : { kind: "char", test: t });
    switch (c) {
      case "d":
        return test(isDigit);
      case "D":
        return test((x) => !isDigit(x));
      case "w":
        return test(isWord);
      case "W":
        return test((x) => !isWord(x));
      case "s":
        return test(isSpace);
      case "S":
        return test((x) => !isSpace(x));
      case "n":
        return test((x) => x === 10);
      case "t":
        return test((x) => x === 9);
      case "r":
        return test((x) => x === 13);
      case "f":
        return test((x) => x === 12);
      case "v":
        return test((x) => x === 11);
      case "x":
      case "u": {
        const len = c === "x" ? 2 : 4;
        const hex = this.src.slice(this.i, this.i + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(`bad escape \\${c}${hex}`);
        this.i += len;
        const code = Number.parseInt(hex, 16);
        return test((x) => x === code);
      }
    }
    if (!inClass) {
      if (c === "b") return { kind: "assert", what: "word" };
      if (c === "B") return { kind: "assert", what: "notWord" };
      if (c === "A") return { kind: "assert", what: "start" };
      if (c === "Z" || c === "z") return { kind: "assert", what: "end" };
    }
    if (c === "0") return test((x) => x === 0);
    if (/[1-9]/.test(c)) this.fail("backreferences are not supported");
    if (/[A-Za-z]/.test(c)) this.fail(`unknown escape \\${c}`);
    const code = c.charCodeAt(0);
    return test((x) => x === code);
  }

  private charClass(): CharTest {
    const negate = this.peek() === "^";
    if (negate) this.i++;
    const tests: CharTest[] = [];
    let first = true;
    while (this.i < this.src.length && (this.peek() !== "]" || first)) {
      first = false;
      const lo = this.classAtom();
      if (this.peek() === "-" && this.src[this.i + 1] !== "]" && this.i + 1 < this.src.length) {
        this.i++;
        const hi = this.classAtom();
        if (typeof lo !== "number" || typeof hi !== "number")
          this.fail("a class range needs single characters at both ends");
        if (hi < lo) this.fail("a class range is out of order");
        tests.push((x) => x >= lo && x <= hi);
      } else {
        tests.push(typeof lo === "number" ? (x) => x === lo : lo);
      }
    }
    if (this.src[this.i++] !== "]") this.fail('missing "]"');
    return negate ? (x) => !tests.some((t) => t(x)) : (x) => tests.some((t) => t(x));
  }

  /** One character of a class (its code), or a class escape such as \d (a test). */
  private classAtom(): number | CharTest {
    const c = this.src[this.i++];
    if (c !== "\\") return c.charCodeAt(0);
    const start = this.i;
    const t = this.escape(true) as CharTest;
    // A single escaped character is a code, so it can bound a range.
    const single = this.src.slice(start, this.i);
    if (single.length === 1 && !/[dDwWsS]/.test(single)) return single.charCodeAt(0);
    return t;
  }
}

// The compiled program: each instruction is one NFA state.
type Inst =
  | { op: "char"; test: CharTest }
  | { op: "split"; a: number; b: number }
  | { op: "jmp"; to: number }
  | { op: "assert"; what: "start" | "end" | "word" | "notWord" }
  | { op: "look"; prog: Inst[]; negate: boolean }
  | { op: "match" };

class Compiler {
  readonly prog: Inst[] = [];

  constructor(private readonly src: string) {}

  emit(inst: Inst): number {
    if (this.prog.length >= MAX_PROGRAM)
      throw new ValueError(
        `pattern ${JSON.stringify(this.src)} is too large once its counts are expanded`,
      );
    this.prog.push(inst);
    return this.prog.length - 1;
  }

  compile(node: Node): void {
    switch (node.kind) {
      case "char":
        this.emit({ op: "char", test: node.test });
        return;
      case "assert":
        this.emit({ op: "assert", what: node.what });
        return;
      case "look": {
        const sub = new Compiler(this.src);
        sub.compile(node.node);
        sub.emit({ op: "match" });
        this.emit({ op: "look", prog: sub.prog, negate: node.negate });
        return;
      }
      case "seq":
        for (const item of node.items) this.compile(item);
        return;
      case "alt": {
        const jumps: number[] = [];
        for (let k = 0; k < node.options.length - 1; k++) {
          const split = this.emit({ op: "split", a: 0, b: 0 });
          (this.prog[split] as { a: number }).a = this.prog.length;
          this.compile(node.options[k]);
          jumps.push(this.emit({ op: "jmp", to: 0 }));
          (this.prog[split] as { b: number }).b = this.prog.length;
        }
        this.compile(node.options[node.options.length - 1]);
        for (const j of jumps) (this.prog[j] as { to: number }).to = this.prog.length;
        return;
      }
      case "repeat": {
        for (let k = 0; k < node.min; k++) this.compile(node.node);
        if (node.max === Infinity) {
          const split = this.emit({ op: "split", a: 0, b: 0 });
          (this.prog[split] as { a: number }).a = this.prog.length;
          this.compile(node.node);
          this.emit({ op: "jmp", to: split });
          (this.prog[split] as { b: number }).b = this.prog.length;
          return;
        }
        const exits: number[] = [];
        for (let k = node.min; k < node.max; k++) {
          const split = this.emit({ op: "split", a: 0, b: 0 });
          (this.prog[split] as { a: number }).a = this.prog.length;
          exits.push(split);
          this.compile(node.node);
        }
        for (const e of exits) (this.prog[e] as { b: number }).b = this.prog.length;
      }
    }
  }
}

/**
 * Runs `prog` on `s` from `start`. With `whole` it accepts only at the end of `s`
 * (fullmatch), otherwise at any position (a lookahead matches a prefix of the rest).
 */
function run(
  prog: Inst[],
  s: string,
  start: number,
  whole: boolean,
  memo: Map<Inst, Map<number, boolean>>,
): boolean {
  let current: number[] = [];
  let seen = new Uint32Array(prog.length);
  let generation = 1;
  const add = (list: number[], pc: number, at: number): boolean => {
    // Depth-first over epsilon moves; `seen` stops loops of empty repetitions.
    const stack = [pc];
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (seen[p] === generation) continue;
      seen[p] = generation;
      const inst = prog[p];
      switch (inst.op) {
        case "jmp":
          stack.push(inst.to);
          break;
        case "split":
          stack.push(inst.b, inst.a);
          break;
        case "assert":
          if (holds(inst.what, s, at)) stack.push(p + 1);
          break;
        case "look": {
          // Each lookahead is evaluated once per position: polynomial overall.
          let byPosition = memo.get(inst);
          if (byPosition === undefined) memo.set(inst, (byPosition = new Map()));
          let found = byPosition.get(at);
          if (found === undefined) {
            found = run(inst.prog, s, at, false, memo);
            byPosition.set(at, found);
          }
          if (found !== inst.negate) stack.push(p + 1);
          break;
        }
        case "match":
          if (!whole || at === s.length) return true;
          break;
        default:
          list.push(p);
      }
    }
    return false;
  };
  if (add(current, 0, start)) return true;
  for (let at = start; at < s.length && current.length > 0; at++) {
    const c = s.charCodeAt(at);
    const next: number[] = [];
    generation++;
    if (generation === 0xffffffff) {
      seen = new Uint32Array(prog.length);
      generation = 1;
    }
    for (const p of current) {
      const inst = prog[p] as { op: "char"; test: CharTest };
      if (inst.test(c) && add(next, p + 1, at + 1)) return true;
    }
    current = next;
  }
  return false;
}

function holds(what: "start" | "end" | "word" | "notWord", s: string, at: number): boolean {
  if (what === "start") return at === 0;
  if (what === "end") return at === s.length;
  const before = at > 0 && isWord(s.charCodeAt(at - 1));
  const after = at < s.length && isWord(s.charCodeAt(at));
  return (before !== after) === (what === "word");
}

const cache = new Map<string, Pattern>();

/** Compiles a pattern (cached); a pattern outside the supported syntax is a ValueError. */
export function compilePattern(source: string): Pattern {
  if (typeof source !== "string")
    throw new ValueError(`a pattern must be a string, got ${JSON.stringify(source)}`);
  const hit = cache.get(source);
  if (hit !== undefined) return hit;
  const compiler = new Compiler(source);
  compiler.compile(new Parser(source).parse());
  compiler.emit({ op: "match" });
  const prog = compiler.prog;
  const pattern: Pattern = {
    source,
    fullMatch: (s: string) => run(prog, s, 0, true, new Map()),
  };
  if (cache.size > 1000) cache.clear();
  cache.set(source, pattern);
  return pattern;
}
