import type { FloatDType } from "../../../backend/dtype.js";
import { ValueError } from "../../../errors.js";
import { ModuleDict } from "../../../nn/containers.js";
import type { Module } from "../../../nn/module.js";
import { cast } from "../../../tensor/ops/elementwise.js";
import { noGrad } from "../../../tensor/state.js";
import type { Tensor } from "../../../tensor/tensor.js";
import { AdapterLayer, type AdapterSettings } from "../adapter-layer.js";

type Norm = Module & { forward(x: Tensor): Tensor };

/**
 * LN tuning (PEFT 0.13.2): the adapter is a whole trainable copy of the norm
 * (ln_tuning_layers.<adapter>), used instead of it. Merging puts the copy in as the base
 * module (PEFT swaps them), so the merged model computes exactly what the adapter did.
 */
export class LNTuningLayer extends AdapterLayer<AdapterSettings> {
  protected readonly adapterLayerNames = ["ln_tuning_layers"] as const;
  /** The base norms replaced by merged adapters. */
  private readonly originals = new Map<string, Norm>();

  constructor(base: Module) {
    super(base);
    this.registerModule("ln_tuning_layers", new ModuleDict<Norm>());
  }

  private get norm(): Norm {
    return this.childModule("base_layer") as Norm;
  }

  private copies(): ModuleDict<Norm> {
    return this.childModule("ln_tuning_layers") as ModuleDict<Norm>;
  }

  addAdapter(name: string, s: AdapterSettings): void {
    const copy = this.norm.deepCopy().to(s.dtype);
    copy.requiresGrad_(true);
    this.register(name, s, { ln_tuning_layers: copy });
  }

  override forward(x: Tensor): Tensor {
    if (this.disabled && this.mergedAdapters.length > 0) this.unmerge();
    const names = this.applied();
    if (this.disabled || this.mergedAdapters.length > 0 || names.length === 0)
      return this.norm.forward(x);
    if (names.length > 1)
      throw new ValueError(
        `${this.path}: LN tuning runs one adapter at a time, got ${names.join(", ")}`,
      );
    return this.transformOutput(names[0], x);
  }

  protected transformOutput(name: string, x: Tensor): Tensor {
    const copy = this.copies().get(name)!;
    return cast(copy.forward(cast(x, this.adapterDType(name))), x.dtype);
  }

  // Merging puts the tuned norm in place of the base one, in the base norm's dtype, so the
  // merged model computes what the adapter did and passes on what the next layer expects.
  protected override mergeOne(name: string): void {
    const original = this.norm;
    const dtype = original.parameters()[0].dtype as FloatDType;
    const tuned = noGrad(() => this.copies().get(name)!.deepCopy().to(dtype));
    tuned.requiresGrad_(false);
    this.originals.set(name, original);
    this.setModule("base_layer", tuned);
  }

  protected override unmergeOne(name: string): void {
    this.setModule("base_layer", this.originals.get(name)!);
    this.originals.delete(name);
  }

  override merge(names: readonly string[] = this.activeAdapters): void {
    const wanted = names.filter((n) => this.hasAdapter(n));
    if (wanted.length > 1)
      throw new ValueError(
        `${this.path}: LN tuning merges one adapter at a time, got ${wanted.join(", ")}`,
      );
    if (wanted.length === 1 && !this.mergedAdapters.includes(wanted[0])) this.unmerge();
    super.merge(wanted);
  }

  protected mergedWeight(): Tensor {
    throw new Error("LN tuning merges by replacing the module");
  }

  protected unmergedWeight(): Tensor {
    throw new Error("LN tuning merges by replacing the module");
  }
}
