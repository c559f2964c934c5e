import type { Module } from "../../nn/module.js";

/** Puts `replacement` where the module at `path` was and returns it. */
export function replaceModule<M extends Module>(root: Module, path: string, replacement: M): M {
  const dot = path.lastIndexOf(".");
  const parent = dot < 0 ? root : root.getModule(path.slice(0, dot));
  parent.setModule(path.slice(dot + 1), replacement);
  root.assignPaths();
  return replacement;
}
