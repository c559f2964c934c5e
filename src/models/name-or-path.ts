import type { Module } from "../nn/module.js";

// transformers' `name_or_path`: the directory or hub id a model was loaded from, as the
// caller wrote it. PEFT records it in adapter_config.json as base_model_name_or_path.
const sources = new WeakMap<Module, string>();

export function setModelNameOrPath(model: Module, nameOrPath: string): void {
  sources.set(model, nameOrPath);
}

/** Where `model` was loaded from, or undefined for a model built in code. */
export function modelNameOrPath(model: Module): string | undefined {
  return sources.get(model);
}
