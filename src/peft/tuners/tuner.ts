import type { FloatDType } from "../../backend/dtype.js";
import type { ArgSpec } from "../../cli/args.js";
import type { Module } from "../../nn/module.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { TaskType } from "../config.js";
import type { AdapterLayer } from "./adapter-layer.js";
import type { VirtualTokenKind } from "./prompt/virtual-tokens.js";

export type { AdapterConfig } from "../registry.js";

/** What code outside a method's folder reads of its config. */
export interface AdapterConfigBase {
  readonly peftType: string;
  taskType: TaskType | null;
  baseModelNameOrPath: string | null;
  /** Modules trained whole beside the adapter (methods that have the option). */
  modulesToSave?: string[] | null;
  /** Which biases train beside the adapter (methods that have the option). */
  bias?: string;
  extra: Record<string, unknown>;
  toJson(): Record<string, unknown>;
}

export interface InjectOptions {
  autocastAdapterDtype: boolean;
  /** Forces the adapter weights' dtype, whatever the base. */
  adapterDtype?: FloatDType;
}

/** What a method does around training beyond the optimizer (AdaLoRA's rank allocation). */
export interface TrainingHooks {
  /** Added to the loss whenever the model computes one (AdaLoRA's orthogonality term). */
  lossTerm?(): Tensor | null;
  /** Once before a run of `totalSteps` optimizer steps. */
  beforeTraining?(totalSteps: number): void;
  /** After the optimizer step of `step` (0-based), before the gradients are cleared. */
  afterStep?(step: number): void;
  /**
   * What a checkpoint needs beyond the saved adapter to continue the run exactly: `json`,
   * and tensors, where "weights/<key>" are loaded with the adapter's file, replacing or
   * joining its tensors (AdaLoRA's file drops pruned ranks that training still updates;
   * P-tuning's holds its encoder's output, not the encoder).
   */
  runState?(): { json: unknown; tensors: Map<string, Tensor> };
  loadRunState?(json: unknown, tensors: ReadonlyMap<string, Tensor>): void;
  /** adapter_config.json keys the run itself changes, not compared when resuming. */
  readonly runConfigKeys?: readonly string[];
}

/** What differs between PEFT methods in how they enter a model; PeftModel does the rest. */
export interface Tuner<C extends AdapterConfigBase = AdapterConfigBase> {
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
  /** The tensors as the file holds them, from the adapter's own (AdaLoRA drops pruned ranks). */
  savedTensors?(config: C, adapterName: string, tensors: Map<string, Tensor>): Map<string, Tensor>;
  /** Prompt learning: where its virtual tokens enter (it wraps no layer). */
  readonly virtualTokens?: VirtualTokenKind;
  /** The method's training hooks for one adapter. */
  training?(model: Module, config: C, adapterName: string): TrainingHooks;
}

/** The options `peft train` has for every method, as parsed. */
export interface CommandOptions {
  targetModules: string[] | "all-linear";
  r?: number;
  alpha?: number;
  dropout?: number;
  /** The method's own options (see MethodCommand.options), by camelCase name. */
  [option: string]: unknown;
}

/** How `peft train --method` makes a method's config. */
export interface MethodCommand<C> {
  /** --method names (a method and its variants: lora, dora) and the config each makes. */
  readonly names: Readonly<Record<string, (o: CommandOptions) => C>>;
  /** Options only this method has, added to peft train's table. */
  readonly options?: ArgSpec;
}

/** One PEFT method: its config class, how it enters a model, its layer, its command. */
export interface PeftMethod<C extends AdapterConfigBase = AdapterConfigBase> {
  readonly config: {
    new (init?: never): C;
    fromJson(json: Record<string, unknown>): C;
    readonly peftType: string;
  };
  readonly tuner: Tuner<C>;
  /** The layer it wraps targets in (none for prompt learning, which adds virtual tokens). */
  readonly layer?: abstract new (
    base: never,
  ) => AdapterLayer;
  readonly command: MethodCommand<C>;
  /**
   * PEFT's targets by transformers model_type, used when targetModules is null (methods
   * without a table need targetModules).
   */
  readonly defaultTargets?: Readonly<Record<string, readonly string[]>>;
}
