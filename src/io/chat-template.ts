import * as jinja from "@huggingface/jinja";
import { FileFormatError, PeftError, ValueError } from "../errors.js";

// @huggingface/jinja's declarations import "./runtime" without an extension, which NodeNext
// resolution does not follow; these are the few members used here.
interface JinjaEnvironment {
  set(name: string, value: unknown): unknown;
}
interface JinjaValue {
  type: string;
  value?: unknown;
}
interface JinjaInterpreter {
  run(program: unknown): JinjaValue;
  evaluate(statement: unknown, environment: JinjaEnvironment): JinjaValue;
  /** Runs a statement list: a loop body once per iteration, even an empty one. */
  evaluateBlock(statements: unknown[], environment: JinjaEnvironment): JinjaValue;
  evaluateFor(node: ForNode, environment: JinjaEnvironment): JinjaValue;
}
interface ForNode {
  iterable: { type: string; lhs?: unknown };
}
const Environment = jinja.Environment as unknown as new () => JinjaEnvironment;
const Interpreter = jinja.Interpreter as unknown as new (env: JinjaEnvironment) => JinjaInterpreter;
const Template = jinja.Template as unknown as new (source: string) => { parsed: unknown };

/** What one rendering may cost: evaluation steps, characters of any string, items of any list. */
export interface ChatTemplateLimits {
  maxSteps: number;
  maxChars: number;
  maxItems: number;
  /** Wall-clock bound in milliseconds, a backstop for work between steps (filters over long lists). */
  maxMillis: number;
}

/**
 * The bounds for rendering `inputChars` characters of messages (`messageCount` messages).
 *
 * Why these bounds: @huggingface/jinja has no limits of its own, and a template is code
 * from a file. "{% for i in range(1000000000) %}" builds a billion-item list before the
 * loop starts (the process dies of memory), nested loops over modest ranges run for hours,
 * and "{% set ns.s = ns.s + ns.s %}" in a loop doubles a string until memory runs out.
 * Scanning the template's text for big literals cannot catch computed sizes, so the
 * interpreter itself is bounded instead: every evaluated node and every block (a loop body,
 * once per iteration) costs one step, a for loop also pays one step per item of what it
 * iterates (it builds a scope per item before running the body), and a real chat template
 * takes tens to hundreds of steps per message (the budget: 200,000 plus 1,000 per message,
 * about half a second of @huggingface/jinja's interpreter); `range()` refuses to build more items than
 * the step budget could ever visit; every value an expression produces is checked as it is
 * made (no string beyond 64x the input or 1M characters, whichever is more; no list beyond
 * the step budget); and a wall-clock deadline, read every 256 steps, catches what steps do
 * not measure (a filter over a long list repeated in a loop). A render therefore does work
 * proportional to its input and the budget, and fails with a typed error naming
 * tokenizer_config.json instead.
 */
export function chatTemplateLimits(inputChars: number, messageCount: number): ChatTemplateLimits {
  const maxSteps = 200_000 + 1_000 * messageCount;
  return {
    maxSteps,
    maxChars: Math.max(1 << 20, 64 * inputChars),
    maxItems: maxSteps,
    maxMillis: 5_000,
  };
}

/** The template called raise_exception(message). */
class TemplateRaised extends Error {}
/** The template went beyond a ChatTemplateLimits bound. */
class TemplateLimitReached extends Error {}

class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private readonly deadline: number;
  /** AST nodes that for loops iterate over: their values pay one step per item. */
  private readonly iterables = new WeakSet<object>();

  constructor(
    env: JinjaEnvironment,
    private readonly limits: ChatTemplateLimits,
  ) {
    super(env);
    this.deadline = performance.now() + limits.maxMillis;
  }

  private step(n = 1): void {
    const before = this.steps;
    this.steps += n;
    if (this.steps > this.limits.maxSteps) {
      throw new TemplateLimitReached(
        `it took more than ${this.limits.maxSteps} evaluation steps (a loop that does not end in reasonable time?)`,
      );
    }
    if (before >>> 8 !== this.steps >>> 8 && performance.now() > this.deadline) {
      throw new TemplateLimitReached(`it ran for more than ${this.limits.maxMillis} ms`);
    }
  }

  override evaluateFor(node: ForNode, environment: JinjaEnvironment): JinjaValue {
    const it = node.iterable.type === "SelectExpression" ? node.iterable.lhs : node.iterable;
    if (typeof it === "object" && it !== null) this.iterables.add(it);
    return super.evaluateFor(node, environment);
  }

  // Every loop iteration runs its body through evaluateBlock, so counting blocks as well as
  // nodes bounds loops with empty bodies too.
  override evaluateBlock(statements: unknown[], environment: JinjaEnvironment): JinjaValue {
    this.step();
    return this.check(super.evaluateBlock(statements, environment));
  }

  override evaluate(statement: unknown, environment: JinjaEnvironment): JinjaValue {
    this.step();
    const v = this.check(super.evaluate(statement, environment));
    if (typeof statement === "object" && statement !== null && this.iterables.has(statement)) {
      const items = v.value;
      this.step(Array.isArray(items) ? items.length : items instanceof Map ? items.size : 0);
    }
    return v;
  }

  private check(v: JinjaValue): JinjaValue {
    const value = v.value;
    if (typeof value === "string" && value.length > this.limits.maxChars) {
      throw new TemplateLimitReached(
        `it built a string of ${value.length} characters, more than the ${this.limits.maxChars} allowed for this input`,
      );
    }
    if (Array.isArray(value) && value.length > this.limits.maxItems) {
      throw new TemplateLimitReached(
        `it built a list of ${value.length} items, more than the ${this.limits.maxItems} allowed`,
      );
    }
    return v;
  }
}

function strftime(date: Date, format: string): string {
  const pad2 = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%[YmdbBHM%]/g, (token) => {
    switch (token) {
      case "%Y":
        return String(date.getFullYear());
      case "%m":
        return pad2(date.getMonth() + 1);
      case "%d":
        return pad2(date.getDate());
      case "%b":
        return new Intl.DateTimeFormat("en-US", { month: "short" }).format(date);
      case "%B":
        return new Intl.DateTimeFormat("en-US", { month: "long" }).format(date);
      case "%H":
        return pad2(date.getHours());
      case "%M":
        return pad2(date.getMinutes());
      default:
        return "%";
    }
  });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A chat template from tokenizer_config.json, parsed once. Rendering is bounded (see
 * chatTemplateLimits) and every failure is typed: a syntax or render error, or a bound
 * reached, is a FileFormatError naming the file; raise_exception("...") called by the
 * template (Hugging Face templates use it to refuse a conversation) is a ValueError
 * carrying the template's message.
 */
export class ChatTemplate {
  private readonly template: { parsed: unknown };

  constructor(
    readonly source: string,
    readonly file: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new FileFormatError(file, `chat_template cannot be parsed: ${message(e)}`);
    }
  }

  /** Renders with `context` (messages, add_generation_prompt, special tokens, ...). */
  render(context: Record<string, unknown>, limits: ChatTemplateLimits, where?: string): string {
    const env = new Environment();
    env.set("false", false);
    env.set("true", true);
    env.set("none", null);
    env.set("False", false);
    env.set("True", true);
    env.set("None", null);
    env.set("raise_exception", (msg?: unknown) => {
      throw new TemplateRaised(msg === undefined ? "(no message)" : String(msg));
    });
    env.set("range", (...args: unknown[]) => boundedRange(args, limits.maxItems));
    env.set("strftime_now", (format: unknown) => strftime(new Date(), String(format)));
    for (const [k, v] of Object.entries(context)) env.set(k, v);
    const at = where === undefined ? "" : ` for ${where}`;
    let out: unknown;
    try {
      out = new BoundedInterpreter(env, limits).run(this.template.parsed).value;
    } catch (e) {
      if (e instanceof TemplateRaised) {
        throw new ValueError(
          `${where === undefined ? "" : `${where}: `}the chat template in ${this.file} refused the conversation: ${e.message}`,
        );
      }
      if (e instanceof PeftError) throw e;
      if (e instanceof TemplateLimitReached)
        throw new FileFormatError(this.file, `chat_template stopped${at}: ${e.message}`);
      if (e instanceof RangeError) {
        // Stack overflow (deep recursion) or a string past the engine's maximum length.
        throw new FileFormatError(this.file, `chat_template stopped${at}: ${e.message}`);
      }
      throw new FileFormatError(this.file, `chat_template failed to render${at}: ${message(e)}`);
    }
    if (typeof out !== "string")
      throw new FileFormatError(this.file, `chat_template rendered no text${at}`);
    return out;
  }
}

/** Python's range(), refusing to build more than `maxItems` items. */
function boundedRange(args: unknown[], maxItems: number): number[] {
  if (args.length === 0 || args.length > 3 || !args.every((a) => Number.isSafeInteger(a))) {
    throw new Error(
      `range() takes one to three integers, got (${args.map((a) => JSON.stringify(a)).join(", ")})`,
    );
  }
  const [start, stop, step] =
    args.length === 1
      ? [0, args[0] as number, 1]
      : [args[0] as number, args[1] as number, (args[2] as number | undefined) ?? 1];
  if (step === 0) throw new Error("range() step must not be zero");
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > maxItems) {
    throw new TemplateLimitReached(
      `range(${args.join(", ")}) would build ${count} items, more than the ${maxItems} allowed`,
    );
  }
  return Array.from({ length: count }, (_, i) => start + i * step);
}
