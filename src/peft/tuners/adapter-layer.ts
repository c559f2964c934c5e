import type { FloatDType } from "../../backend/dtype.js";
import { ValueError } from "../../errors.js";
import { ModuleDict, ParameterDict } from "../../nn/containers.js";
import { Conv1D, Embedding, type Linear } from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { Linear4bit } from "../../quant/linear4bit.js";
import { rand } from "../../tensor/creation.js";
import { add, cast, mul, sub } from "../../tensor/ops/elementwise.js";
import { transpose } from "../../tensor/ops/layout.js";
import { isGradEnabled, noGrad } from "../../tensor/state.js";
import { isCurrent, overwrite, type StorageStamp, stampOf } from "../../tensor/storage-version.js";
import type { Tensor } from "../../tensor/tensor.js";
import { currentRowAdapters, rowMask } from "./mixed-batch.js";

/** A layer an adapter can wrap: a linear layer (dense or 4-bit), GPT-2's Conv1D, or an embedding. */
export type BaseLayer = Linear | Linear4bit | Conv1D | Embedding;

let warnedRequantize = false;

interface InputCast {
  dtype: FloatDType;
  grad: boolean;
  requiresGrad: boolean;
  source: StorageStamp;
  cast: Tensor;
}

// Adapter layers that read the same input (q, k and v of one attention block) share its
// cast to the adapter dtype: one cast forward, and in backward their gradients add up in
// the adapter dtype before a single cast back. An entry made under another grad mode, or
// before the input's values changed, is made again.
const inputCasts = new WeakMap<Tensor, InputCast>();

function castInput(x: Tensor, dtype: FloatDType): Tensor {
  if (x.dtype === dtype) return x;
  const grad = isGradEnabled();
  const hit = inputCasts.get(x);
  if (
    hit !== undefined &&
    hit.dtype === dtype &&
    hit.grad === grad &&
    hit.requiresGrad === x.requiresGrad &&
    isCurrent(hit.source, x.data)
  ) {
    return hit.cast;
  }
  const c = cast(x, dtype);
  inputCasts.set(x, {
    dtype,
    grad,
    requiresGrad: x.requiresGrad,
    source: stampOf(x.data),
    cast: c,
  });
  return c;
}

/** What every adapter keeps besides its tensors: at least the dtype of its weights. */
export interface AdapterSettings {
  dtype: FloatDType;
}

/**
 * What every adapter layer shares (PEFT's BaseTunerLayer): the wrapped base layer, the
 * adapters it holds (their settings, and their tensors in the children named by
 * `adapterLayerNames`, one entry per adapter, as PEFT's adapter_layer_names), which are
 * active, which are merged into the base weight. A method says how an adapter changes the
 * layer's input (IA3 on feed-forward layers, BOFT's rotation) and its result (a delta added,
 * a scale, a rotation), and how it changes the base weight when merged.
 */
export abstract class AdapterLayer<S extends AdapterSettings = AdapterSettings> extends Module {
  activeAdapters: string[] = [];
  mergedAdapters: string[] = [];
  /** While true the layer is its base layer (disableAdapter). */
  disabled = false;
  protected readonly adapters = new Map<string, S>();
  /** Children holding one entry per adapter; their entries are what is saved, under these names. */
  protected abstract readonly adapterLayerNames: readonly string[];

  /** Wraps `base`: a BaseLayer, or for methods that tune other modules (LN tuning) any module. */
  constructor(base: BaseLayer | Module) {
    super();
    this.registerModule("base_layer", base);
  }

  get base(): BaseLayer {
    return this.childModule("base_layer") as BaseLayer;
  }

  /** The base weight in [out, in] orientation (GPT-2's Conv1D stores [in, out]). */
  get inFeatures(): number {
    const b = this.base;
    return b instanceof Embedding ? b.numEmbeddings : b.inFeatures;
  }

  get outFeatures(): number {
    const b = this.base;
    return b instanceof Embedding ? b.dim : b.outFeatures;
  }

  adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  hasAdapter(name: string): boolean {
    return this.adapters.has(name);
  }

  settingsOf(name: string): S {
    this.requireAdapter(name);
    return this.adapters.get(name)!;
  }

  /** The dtype of an adapter's weights (the input is cast to it). */
  adapterDType(name: string): FloatDType {
    return this.settingsOf(name).dtype;
  }

  /** Registers a new adapter's settings (replacing one of that name) and its children's entries. */
  protected register(name: string, settings: S, tensors: Record<string, Tensor | Module>): void {
    if (this.adapters.has(name)) this.deleteAdapter(name);
    for (const [dict, value] of Object.entries(tensors)) {
      const d = this.childModule(dict);
      if (d instanceof ParameterDict) d.set(name, value as Tensor);
      else if (d instanceof ModuleDict) d.set(name, value as Module);
      else throw new Error(`${this.constructor.name}: no adapter dictionary "${dict}"`);
    }
    this.adapters.set(name, settings);
  }

  /** Tensors to save, by PEFT's key suffix (e.g. "lora_A.weight", "ia3_l"). */
  adapterState(name: string): Map<string, Tensor> {
    this.requireAdapter(name);
    const out = new Map<string, Tensor>();
    for (const dict of this.adapterLayerNames) {
      const d = this.childModule(dict);
      if (d instanceof ParameterDict) {
        const t = d.get(name);
        if (t !== undefined) out.set(dict, t);
      } else if (d instanceof ModuleDict) {
        const m = d.get(name);
        if (m !== undefined) for (const [p, t] of m.namedParameters()) out.set(`${dict}.${p}`, t);
      }
    }
    return out;
  }

  deleteAdapter(name: string): void {
    if (!this.adapters.has(name)) return;
    if (this.mergedAdapters.includes(name)) this.unmerge();
    for (const dict of this.adapterLayerNames) {
      const d = this.childModule(dict);
      if (d instanceof ParameterDict || d instanceof ModuleDict) d.delete(name);
    }
    this.adapters.delete(name);
    this.activeAdapters = this.activeAdapters.filter((a) => a !== name);
  }

  /** The input the base layer sees; the identity for methods that leave it alone. */
  protected transformInput(_name: string, x: Tensor): Tensor {
    return x;
  }

  /** The layer's result with the adapter applied, from the original input and the base result. */
  protected abstract transformOutput(name: string, x: Tensor, result: Tensor): Tensor;
  /** The base weight (float32, stored layout) with the adapter merged in, and taken out again. */
  protected abstract mergedWeight(name: string, w32: Tensor): Tensor;
  protected abstract unmergedWeight(name: string, w32: Tensor): Tensor;

  /** The active adapters this layer holds. */
  protected applied(): string[] {
    return this.activeAdapters.filter((a) => this.adapters.has(a));
  }

  forward(x: Tensor): Tensor {
    if (this.disabled && this.mergedAdapters.length > 0) this.unmerge();
    const base = this.base as Module & { forward(x: Tensor): Tensor };
    if (this.disabled || this.mergedAdapters.length > 0) return base.forward(x);
    const names = this.applied();
    let input = x;
    for (const name of names) input = this.transformInput(name, input);
    let out = base.forward(input);
    for (const name of names) out = this.transformOutput(name, x, out);
    return out;
  }

  /** The wrapped layer's bias, or null (none, or an embedding). */
  protected get baseBias(): Tensor | null {
    const b = this.base;
    return b instanceof Embedding ? null : b.bias;
  }

  /**
   * f applied, in the adapter's dtype, to the base result without its bias, which is
   * added back afterwards (OFT and BOFT change W·x and leave the bias as it was).
   */
  protected withoutBias(name: string, result: Tensor, f: (y: Tensor) => Tensor): Tensor {
    const bias = this.baseBias?.detach() ?? null;
    const y = bias === null ? result : sub(result, cast(bias, result.dtype));
    const out = cast(f(cast(y, this.adapterDType(name))), result.dtype);
    return bias === null ? out : add(out, cast(bias, result.dtype));
  }

  /** Module dropout: while training, whether this forward skips an adapter dropped with probability p. */
  protected skipsThisStep(p: number): boolean {
    return this.training && p > 0 && (rand([1]).item() as number) <= p;
  }

  /** The input cast to an adapter's dtype (shared by the layers that read the same input). */
  protected adapterInput(name: string, x: Tensor): Tensor {
    return this.base instanceof Embedding ? x : castInput(x, this.adapterDType(name));
  }

  /** Merges the active adapters into the base weight (rounded to its dtype). */
  merge(names: readonly string[] = this.activeAdapters): void {
    for (const name of names) {
      if (!this.adapters.has(name) || this.mergedAdapters.includes(name)) continue;
      this.mergeOne(name);
      this.mergedAdapters.push(name);
    }
  }

  /** Removes merged adapters from the base weight, last merged first. */
  unmerge(): void {
    while (this.mergedAdapters.length > 0) this.unmergeOne(this.mergedAdapters.pop()!);
  }

  protected mergeOne(name: string): void {
    this.updateBaseWeight((w) => this.mergedWeight(name, w));
  }

  protected unmergeOne(name: string): void {
    this.updateBaseWeight((w) => this.unmergedWeight(name, w));
  }

  /** Replaces the base weight's values in place (same tensor object), computing in float32. */
  protected updateBaseWeight(f: (w32: Tensor) => Tensor): void {
    const base = this.base;
    if (base instanceof Linear4bit) {
      // A 4-bit weight is dequantised, changed and quantised again: that rounds a second time.
      if (!warnedRequantize) {
        console.warn(
          `${this.path}: merging into a 4-bit layer requantises its weight, which adds rounding error`,
        );
        warnedRequantize = true;
      }
      noGrad(() => base.replaceWeight(f(cast(base.weight, "float32"))));
      return;
    }
    const w = base.weight;
    noGrad(() => {
      const next = cast(f(cast(w.detach(), "float32")), w.dtype);
      overwrite(w.data, next.data);
    });
  }

  /** A matrix computed as [out, in] turned into the base weight's stored layout. */
  protected toStoredLayout(deltaOutIn: Tensor): Tensor {
    // Conv1D stores [in, out] and an embedding [num_embeddings, dim]: both transposed.
    return this.base instanceof Conv1D || this.base instanceof Embedding
      ? transpose(deltaOutIn)
      : deltaOutIn;
  }

  protected requireAdapter(name: string): void {
    if (!this.adapters.has(name)) {
      throw new ValueError(
        `${this.path}: no adapter named "${name}" (has: ${this.adapterNames().join(", ") || "none"})`,
      );
    }
  }
}

/**
 * Adapters that add a delta to the base result (LoRA, VeRA, LoHa, LoKr, AdaLoRA), with the
 * one dtype rule of peft-ts: the input is cast to the adapter's dtype, the delta is
 * computed there and cast to the base result's dtype before it is added. Rows of a mixed
 * batch (PEFT's adapter_names) get only their own adapter's delta.
 */
export abstract class AdditiveLayer<
  S extends AdapterSettings = AdapterSettings,
> extends AdapterLayer<S> {
  /** The adapter's contribution for input x already cast to its dtype (and the base result, for DoRA). */
  protected abstract delta(name: string, x: Tensor, baseResult: Tensor): Tensor;
  /** ΔW in the base weight's stored layout, float32 or the adapter dtype. */
  abstract deltaWeight(name: string): Tensor;

  protected transformOutput(name: string, x: Tensor, result: Tensor): Tensor {
    const d = cast(this.delta(name, this.adapterInput(name, x), result), result.dtype);
    const rows = currentRowAdapters();
    return add(result, rows === null ? d : mul(d, rowMask(rows, name, d)));
  }

  protected override applied(): string[] {
    const rows = currentRowAdapters();
    if (rows === null) return super.applied();
    return [...new Set(rows)].filter((a) => this.adapters.has(a));
  }

  protected mergedWeight(name: string, w32: Tensor): Tensor {
    return add(w32, this.deltaWeight(name));
  }

  protected unmergedWeight(name: string, w32: Tensor): Tensor {
    return sub(w32, this.deltaWeight(name));
  }
}

/**
 * The dtype adapters on a layer get: the forced one if given; else float32 on a 16-bit
 * base with autocastAdapterDtype (PEFT's default), else the base weight's dtype. A 4-bit
 * weight's dtype is its storage dtype, as PEFT moves adapters to the base weight's dtype
 * when it is a float: float32 over uint8 storage (the adapter's own), and the storage
 * dtype when the bytes are stored as a float; the compute dtype plays no part.
 */
export function adapterDTypeFor(
  base: BaseLayer,
  options: { autocastAdapterDtype: boolean; adapterDtype?: FloatDType },
): FloatDType {
  return adapterDTypeOver(
    base instanceof Linear4bit
      ? base.quantStorage === "uint8"
        ? "float32"
        : base.quantStorage
      : (base.weight.dtype as FloatDType),
    options,
  );
}

/** The same rule for adapters over a module whose weights have dtype `d` (a norm's copy). */
export function adapterDTypeOver(
  d: FloatDType,
  options: { autocastAdapterDtype: boolean; adapterDtype?: FloatDType },
): FloatDType {
  if (options.adapterDtype !== undefined) return options.adapterDtype;
  return options.autocastAdapterDtype && (d === "bfloat16" || d === "float16") ? "float32" : d;
}
