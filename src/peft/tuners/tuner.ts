import type { FloatDType } from "../../backend/dtype.js";
import type { Module } from "../../nn/module.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { LoraConfig } from "./lora/config.js";
import type { VeraConfig } from "./vera/config.js";

export type AdapterConfig = LoraConfig | VeraConfig;

export interface InjectOptions {
  autocastAdapterDtype: boolean;
  /** Forces the adapter weights' dtype, whatever the base. */
  adapterDtype?: FloatDType;
}

/** What differs between PEFT methods; PeftModel does the rest. */
export interface Tuner<C extends AdapterConfig = AdapterConfig> {
  /** Refuses a new adapter's config that cannot live beside the model's existing ones. */
  checkNewConfig?(existing: readonly C[], config: C): void;
  /** Wraps the targeted layers (or adds the adapter to already wrapped ones). */
  inject(model: Module, config: C, adapterName: string, options: InjectOptions): void;
  /** Tensors saved outside the adapter layers (VeRA's shared projections), by full key. */
  extraState?(model: Module, config: C, adapterName: string): Map<string, Tensor>;
  /** Takes those extra tensors back when loading; returns the keys it consumed. */
  loadExtraState?(
    model: Module,
    config: C,
    adapterName: string,
    tensors: ReadonlyMap<string, Tensor>,
  ): string[];
}
