import type { FloatDType } from "../../backend/dtype.js";
import { ValueError } from "../../errors.js";
import { Conv1D, Embedding, type Linear } from "../../nn/layers.js";
import { Module } from "../../nn/module.js";
import { Linear4bit } from "../../quant/linear4bit.js";
import { add, cast, sub } from "../../tensor/ops/elementwise.js";
import { transpose } from "../../tensor/ops/layout.js";
import { isGradEnabled, noGrad } from "../../tensor/state.js";
import { isCurrent, overwrite, type StorageStamp, stampOf } from "../../tensor/storage-version.js";
import type { Tensor } from "../../tensor/tensor.js";

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

/**
 * What every adapter layer shares (PEFT's BaseTunerLayer): the wrapped base layer, the
 * adapters it holds, which are active, which are merged into the base weight, and the
 * one dtype rule of peft-ts: compute the base result, cast the input to the adapter's
 * dtype, compute the delta, cast the delta to the base result's dtype, add.
 */
export abstract class AdapterLayer extends Module {
  activeAdapters: string[] = [];
  mergedAdapters: string[] = [];
  /** While true the layer is its base layer (disableAdapter). */
  disabled = false;

  constructor(base: BaseLayer) {
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

  abstract adapterNames(): string[];
  /** The dtype of an adapter's weights (the input is cast to it). */
  abstract adapterDType(name: string): FloatDType;
  /** The adapter's contribution for input x already cast to its dtype (and the base result, for DoRA). */
  protected abstract delta(name: string, x: Tensor, baseResult: Tensor): Tensor;
  /** ΔW in the base weight's stored layout, float32 or the adapter dtype. */
  abstract deltaWeight(name: string): Tensor;
  /** Tensors to save, by PEFT's key suffix (e.g. "lora_A.weight"). */
  abstract adapterState(name: string): Map<string, Tensor>;
  abstract deleteAdapter(name: string): void;

  forward(x: Tensor): Tensor {
    if (this.disabled && this.mergedAdapters.length > 0) this.unmerge();
    const result = (this.base as Module & { forward(x: Tensor): Tensor }).forward(x);
    if (this.disabled || this.mergedAdapters.length > 0) return result;
    let out = result;
    for (const name of this.activeAdapters) {
      if (!this.adapterNames().includes(name)) continue;
      const xa = this.base instanceof Embedding ? x : castInput(x, this.adapterDType(name));
      out = add(out, cast(this.delta(name, xa, result), result.dtype));
    }
    return out;
  }

  /** Adds the active adapters' ΔW into the base weight (rounded to its dtype). */
  merge(names: readonly string[] = this.activeAdapters): void {
    for (const name of names) {
      if (!this.adapterNames().includes(name) || this.mergedAdapters.includes(name)) continue;
      this.mergeOne(name);
      this.mergedAdapters.push(name);
    }
  }

  /** Removes merged adapters from the base weight, last merged first. */
  unmerge(): void {
    while (this.mergedAdapters.length > 0) this.unmergeOne(this.mergedAdapters.pop()!);
  }

  protected mergeOne(name: string): void {
    this.updateBaseWeight((w) => add(w, this.deltaWeight(name)));
  }

  protected unmergeOne(name: string): void {
    this.updateBaseWeight((w) => sub(w, this.deltaWeight(name)));
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

  /** ΔW computed as [out, in] turned into the base weight's stored layout. */
  protected toStoredLayout(deltaOutIn: Tensor): Tensor {
    // Conv1D stores [in, out] and an embedding [num_embeddings, dim]: both transposed.
    return this.base instanceof Conv1D || this.base instanceof Embedding
      ? transpose(deltaOutIn)
      : deltaOutIn;
  }

  protected requireAdapter(name: string): void {
    if (!this.adapterNames().includes(name)) {
      throw new ValueError(
        `${this.path}: no adapter named "${name}" (has: ${this.adapterNames().join(", ") || "none"})`,
      );
    }
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
  if (options.adapterDtype !== undefined) return options.adapterDtype;
  const d =
    base instanceof Linear4bit
      ? base.quantStorage === "uint8"
        ? "float32"
        : base.quantStorage
      : (base.weight.dtype as FloatDType);
  return options.autocastAdapterDtype && (d === "bfloat16" || d === "float16") ? "float32" : d;
}
