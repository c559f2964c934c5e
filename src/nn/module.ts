import type { DType, FloatDType } from "../backend/dtype.js";
import { isFloat } from "../backend/dtype.js";
import { ShapeError, ValueError } from "../errors.js";
import { fmt, sameShape } from "../tensor/shape.js";
import { noGrad } from "../tensor/state.js";
import { overwrite } from "../tensor/storage-version.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * A node of the model tree, as torch.nn.Module: named parameters (trainable tensors),
 * buffers (state that is not trained) and child modules. Names follow the Hugging Face
 * state-dict names (`model.layers.0.self_attn.q_proj.weight`), because adapters target
 * them and files store them.
 */
export abstract class Module {
  training = true;
  /** Dotted path from the root, set by `assignPaths`; used in error messages. */
  path = "";
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.params.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t);
    return t;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** A parameter or buffer by local name. */
  protected tensor(name: string): Tensor {
    const t = this.params.get(name) ?? this.buffers.get(name);
    if (t == null)
      throw new ValueError(`${this.path || this.constructor.name}: no tensor named "${name}"`);
    return t;
  }

  protected optionalTensor(name: string): Tensor | null {
    return this.params.get(name) ?? this.buffers.get(name) ?? null;
  }

  /** Replaces a parameter's tensor (for loading, casting, tying). */
  setParameter(name: string, t: Tensor | null): void {
    if (!this.params.has(name))
      throw new ValueError(`${this.path || this.constructor.name}: no parameter named "${name}"`);
    this.params.set(name, t);
  }

  setBuffer(name: string, t: Tensor): void {
    this.buffers.set(name, t);
  }

  /** This module's own parameters and buffers (not its children's), by local name. */
  localTensors(): [string, Tensor, "parameter" | "buffer"][] {
    const out: [string, Tensor, "parameter" | "buffer"][] = [];
    for (const [name, t] of this.params) if (t !== null) out.push([name, t, "parameter"]);
    for (const [name, t] of this.buffers) out.push([name, t, "buffer"]);
    return out;
  }

  removeModule(name: string): void {
    this.children.delete(name);
  }

  protected removeParameter(name: string): void {
    this.params.delete(name);
  }

  /** Replaces (or adds) a direct child; adapters wrap layers this way. */
  setModule(name: string, m: Module): void {
    this.children.set(name, m);
  }

  childModule(name: string): Module | undefined {
    return this.children.get(name);
  }

  /**
   * A child that computes y = f(x). Layers call their children through this, never
   * through fields, so a child replaced by an adapter wrapper is the one that runs.
   */
  protected call(name: string, x: Tensor): Tensor {
    const m = this.children.get(name) as (Module & { forward(x: Tensor): Tensor }) | undefined;
    if (m === undefined || typeof m.forward !== "function") {
      throw new ValueError(`${this.path || this.constructor.name}: no callable child "${name}"`);
    }
    return m.forward(x);
  }

  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** This module and every descendant with its dotted name ("" for this one). */
  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, child] of this.children)
      yield* child.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** The descendant at a dotted path. */
  getModule(path: string): Module {
    if (path === "") return this;
    let m: Module | undefined = this;
    for (const part of path.split(".")) {
      m = m?.children.get(part);
      if (m === undefined) throw new ValueError(`no module named "${path}" (missing "${part}")`);
    }
    return m;
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [modName, m] of this.namedModules(prefix)) {
      for (const [name, t] of m.params) {
        // Tied weights are reported once, under their first name.
        if (t === null || seen.has(t)) continue;
        seen.add(t);
        yield [modName ? `${modName}.${name}` : name, t];
      }
    }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  *namedBuffers(prefix = ""): Generator<[string, Tensor]> {
    for (const [modName, m] of this.namedModules(prefix)) {
      for (const [name, t] of m.buffers) yield [modName ? `${modName}.${name}` : name, t];
    }
  }

  /** Every parameter and buffer by full name, tied tensors under each of their names. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [modName, m] of this.namedModules()) {
      for (const [name, t] of [...m.params, ...m.buffers]) {
        if (t !== null) out.set(modName ? `${modName}.${name}` : name, t);
      }
    }
    return out;
  }

  /**
   * A deep copy: same class and settings, copied parameters and buffers (same
   * requiresGrad), copied children. Used for PEFT's modules_to_save.
   */
  deepCopy(): this {
    const copy = Object.create(Object.getPrototypeOf(this)) as this;
    Object.assign(copy, this);
    const dup = (t: Tensor): Tensor => {
      const c = t.detach().clone();
      c.requiresGrad = t.requiresGrad;
      return c;
    };
    Object.assign(copy, {
      params: new Map([...this.params].map(([n, t]) => [n, t === null ? null : dup(t)])),
      buffers: new Map([...this.buffers].map(([n, t]) => [n, dup(t)])),
      children: new Map([...this.children].map(([n, c]) => [n, c.deepCopy()])),
    });
    return copy;
  }

  /** Sets `path` on every module from its position in the tree. */
  assignPaths(): this {
    for (const [name, m] of this.namedModules()) m.path = name;
    return this;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freezes or unfreezes every parameter. */
  requiresGrad_(flag = true): this {
    for (const t of this.parameters()) t.requiresGrad = flag;
    return this;
  }

  /**
   * Casts floating parameters and buffers to `dtype` in place (tied tensors stay tied).
   * Non-float tensors are left alone.
   */
  to(dtype: FloatDType): this {
    const cast = new Map<Tensor, Tensor>();
    const convert = (t: Tensor): Tensor => {
      if (!isFloat(t.dtype) || t.dtype === dtype) return t;
      let c = cast.get(t);
      if (c === undefined) {
        c = noGrad(() => t.to(dtype)).detach();
        c.requiresGrad = t.requiresGrad;
        cast.set(t, c);
      }
      return c;
    };
    for (const [, m] of this.namedModules()) {
      for (const [name, t] of m.params) if (t !== null) m.params.set(name, convert(t));
      for (const [name, t] of m.buffers) m.buffers.set(name, convert(t));
    }
    return this;
  }

  /** Copies values into existing tensors by name, checking shapes; dtypes convert to the module's. */
  loadStateDict(
    tensors: ReadonlyMap<string, Tensor>,
    options: { strict?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !tensors.has(k));
    const unexpected = [...tensors.keys()].filter((k) => !own.has(k));
    if ((options.strict ?? true) && (missing.length > 0 || unexpected.length > 0)) {
      throw new ValueError(
        `loadStateDict: ${missing.length} missing key(s) [${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}] and ${unexpected.length} unexpected key(s) [${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ", ..." : ""}]`,
      );
    }
    for (const [name, src] of tensors) {
      const dst = own.get(name);
      if (dst === undefined) continue;
      if (!sameShape(dst.shape, src.shape)) {
        throw new ShapeError(
          "loadStateDict",
          `tensor "${name}" has shape ${fmt(src.shape)} but the model expects ${fmt(dst.shape)}`,
        );
      }
      const value = src.dtype === dst.dtype ? src : src.to(dst.dtype as DType);
      overwrite(dst.data, value.data);
    }
    return { missing, unexpected };
  }
}
