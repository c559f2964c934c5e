import type { Module } from "../../nn/module.js";
import { findTargets, type TargetSpec } from "../targeting.js";
import type { AdapterLayer, BaseLayer } from "./adapter-layer.js";

/** Puts `replacement` where the module at `path` was and returns it. */
export function replaceModule<M extends Module>(root: Module, path: string, replacement: M): M {
  const dot = path.lastIndexOf(".");
  const parent = dot < 0 ? root : root.getModule(path.slice(0, dot));
  parent.setModule(path.slice(dot + 1), replacement);
  root.assignPaths();
  return replacement;
}

/**
 * Wraps every targeted module the method can wrap in its layer class (or reuses the layer
 * already there, for a second adapter) and lets `add` put the new adapter on it.
 */
export function wrapTargets<L extends AdapterLayer>(
  model: Module,
  spec: TargetSpec,
  Layer: new (base: BaseLayer) => L,
  wraps: (m: Module) => boolean,
  add: (layer: L, name: string) => void,
): void {
  for (const name of findTargets(model, spec, (m) => m instanceof Layer || wraps(m))) {
    const found = model.getModule(name);
    const layer =
      found instanceof Layer ? found : replaceModule(model, name, new Layer(found as BaseLayer));
    add(layer, name);
  }
}
