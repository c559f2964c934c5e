import { ValueError } from "../errors.js";
import { compilePattern } from "../io/pattern.js";
import { Conv1D, Linear } from "../nn/layers.js";
import type { Module } from "../nn/module.js";
import { Linear4bit } from "../quant/linear4bit.js";

export interface TargetSpec {
  targetModules: string[] | string | null;
  excludeModules?: string[] | string | null;
  layersToTransform?: number[] | number | null;
  layersPattern?: string[] | string | null;
}

const DEFAULT_LAYER_NAMES = ["layers", "h", "block", "blocks", "layer"];

/** PEFT's rule: a list entry matches the full name or a dotted suffix; a string is a full-match regex. */
export function nameMatches(spec: string[] | string, name: string): boolean {
  if (typeof spec === "string") return compilePattern(spec).fullMatch(name);
  return spec.some((t) => name === t || name.endsWith(`.${t}`));
}

/**
 * The layer index in a module name: the number after a segment run matching one of the
 * layer patterns and before another segment (PEFT's `.*\.{pattern}\.(\d+)\.`, taking the
 * rightmost such place as its greedy `.*` does).
 */
function layerIndex(name: string, patterns: string[]): number | null {
  const segments = name.split(".");
  for (const p of patterns) {
    const prefix = compilePattern(`(?:.*\\.)?(?:${p})`);
    for (let i = segments.length - 3; i >= 0; i--) {
      if (!/^\d+$/.test(segments[i + 1])) continue;
      if (prefix.fullMatch(segments.slice(0, i + 1).join("."))) return Number(segments[i + 1]);
    }
  }
  return null;
}

/** Whether a module of the model is a linear layer in the sense of "all-linear". */
export function isLinearLike(m: Module): boolean {
  return m instanceof Linear || m instanceof Linear4bit || m instanceof Conv1D;
}

/**
 * Names of the modules an adapter config targets, in model order. `supported` decides
 * which module types the method can wrap; the output head (lm_head) is excluded from "all-linear".
 * When nothing matches, the error lists the model's module names.
 */
export function findTargets(
  model: Module,
  spec: TargetSpec,
  supported: (m: Module) => boolean,
): string[] {
  if (spec.targetModules == null) {
    throw new ValueError('targetModules is required: give module names, a regex, or "all-linear"');
  }
  const allLinear = spec.targetModules === "all-linear";
  const layers =
    spec.layersToTransform == null
      ? null
      : new Set(
          Array.isArray(spec.layersToTransform) ? spec.layersToTransform : [spec.layersToTransform],
        );
  if (layers !== null && typeof spec.targetModules === "string" && !allLinear) {
    throw new ValueError(
      "layersToTransform cannot be combined with a regex targetModules (as in PEFT)",
    );
  }
  const patterns =
    spec.layersPattern == null
      ? DEFAULT_LAYER_NAMES
      : Array.isArray(spec.layersPattern)
        ? spec.layersPattern
        : [spec.layersPattern];
  const found: string[] = [];
  const names: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (name === "") continue;
    names.push(name);
    const matched = allLinear
      ? isLinearLike(m) && name !== "lm_head"
      : nameMatches(spec.targetModules, name);
    if (!matched) continue;
    if (spec.excludeModules != null && nameMatches(spec.excludeModules, name)) continue;
    if (layers !== null) {
      const idx = layerIndex(name, patterns);
      if (idx === null || !layers.has(idx)) continue;
    }
    if (!supported(m)) {
      if (allLinear) continue;
      throw new ValueError(
        `target module "${name}" is a ${m.constructor.name}, which this adapter type cannot wrap`,
      );
    }
    found.push(name);
  }
  if (found.length === 0) {
    const leaves = names.filter((n) => model.getModule(n).namedChildren().length === 0);
    throw new ValueError(
      `targetModules ${JSON.stringify(spec.targetModules)} matched no module of the model. Its layers are: ${leaves.slice(0, 40).join(", ")}${leaves.length > 40 ? `, ... (${leaves.length} in all)` : ""}`,
    );
  }
  return found;
}

/** rank_pattern / alpha_pattern lookup as PEFT 0.13 does it: an exact name, or a key matching the name's end after a dot. */
export function patternValue(
  pattern: Record<string, number>,
  name: string,
  fallback: number,
): number {
  if (pattern[name] !== undefined) return pattern[name];
  for (const [key, value] of Object.entries(pattern)) {
    if (compilePattern(`.*\\.(?:${key})`).fullMatch(name)) return value;
  }
  return fallback;
}
