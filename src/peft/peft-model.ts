import type { FloatDType } from "../backend/dtype.js";
import { FileFormatError, ShapeError, ValueError } from "../errors.js";
import { concatBytes } from "../io/files/byte-source.js";
import type { FolderFiles, ModelFiles } from "../io/files/model-files.js";
import type { CausalLMBase } from "../models/causal-lm.js";
import type { GenerateOptions } from "../models/generate.js";
import { generate } from "../models/generate.js";
import { modelNameOrPath } from "../models/name-or-path.js";
import type { CausalLanguageModel, CausalLMInputs } from "../models/output.js";
import type { Module } from "../nn/module.js";
import { Linear4bit } from "../quant/linear4bit.js";
import { add, cast } from "../tensor/ops/elementwise.js";
import { fmt, sameShape } from "../tensor/shape.js";
import { overwrite } from "../tensor/storage-version.js";
import type { Tensor } from "../tensor/tensor.js";
import { adapterBytes, adapterPath, CONFIG_NAME, WEIGHTS_NAME } from "./adapter-files.js";
import { modelTypeOf } from "./default-targets.js";
import { ModulesToSaveWrapper } from "./modules-to-save.js";
import {
  type AdapterConfigInit,
  isPeftType,
  methodFor,
  PEFT_METHODS,
  PEFT_TYPES,
} from "./registry.js";
import { adapterDir, readAdapter, weightsName, writeAdapter } from "./save-load.js";
import { nameMatches } from "./targeting.js";
import { AdapterLayer, AdditiveLayer } from "./tuners/adapter-layer.js";
import { BASE_ROWS, withRowAdapters } from "./tuners/mixed-batch.js";
import type { VirtualTokenEncoder } from "./tuners/prompt/encoder.js";
import {
  forwardWithVirtualTokens,
  PROMPT_ENCODER,
  promptEncoders,
  type VirtualTokenKind,
  withVirtualTokens,
} from "./tuners/prompt/virtual-tokens.js";
import { replaceModule } from "./tuners/replace.js";
import type {
  AdapterConfig,
  AdapterConfigBase,
  InjectOptions,
  TrainingHooks,
  Tuner,
} from "./tuners/tuner.js";

/** A model peft-ts can wrap: a module with a forward taking one inputs object. */
export type BaseModel = Module & { forward(inputs: never): unknown };

export interface PeftOptions {
  adapterName?: string;
  /** Keep adapter weights in float32 on a 16-bit base (PEFT's default, true). */
  autocastAdapterDtype?: boolean;
  /** Force the adapter weights' dtype (overrides autocastAdapterDtype). */
  adapterDtype?: FloatDType;
  onWarning?: (message: string) => void;
}

const PREFIX = "base_model.model.";

function tunerFor(config: AdapterConfig): Tuner {
  return methodFor(config).tuner;
}

/** Which biases train with the adapter ("none" for methods without the option). */
function biasOf(config: AdapterConfigBase): string {
  return config.bias ?? "none";
}

/** PEFT's classifier heads, added to modules_to_save for sequence classification. */
const SEQ_CLS_HEADS = ["classifier", "score"];

/**
 * A base model with one or more adapters injected (PEFT's PeftModel). The base model is
 * modified in place: targeted layers are wrapped, base weights are frozen, and only the
 * active adapter trains.
 */
export class PeftModel<M extends BaseModel = BaseModel> {
  readonly peftConfig = new Map<string, AdapterConfig>();
  activeAdapter: string;
  private readonly injectOptions: InjectOptions;
  private readonly warn: (message: string) => void;
  private readonly hooks = new Map<string, TrainingHooks | null>();
  /** Inside disableAdapter: prompt learning adds no virtual tokens. */
  private promptDisabled = false;

  constructor(
    readonly model: M,
    config: AdapterConfig,
    options: PeftOptions = {},
  ) {
    this.injectOptions = {
      autocastAdapterDtype: options.autocastAdapterDtype ?? true,
      adapterDtype: options.adapterDtype,
    };
    this.warn = options.onWarning ?? console.warn;
    this.activeAdapter = options.adapterName ?? "default";
    this.addAdapter(this.activeAdapter, config);
    this.setAdapter(this.activeAdapter);
  }

  /**
   * Loads a saved adapter (a PEFT directory, or its two files in memory) onto a base
   * model. As PEFT's from_pretrained: unless `isTrainable`, the adapter is frozen and the
   * model is in eval mode, so adapter dropout is off and the outputs are the saved adapter's.
   */
  static fromPretrained<M extends BaseModel>(
    model: M,
    dirOrFiles: string | ModelFiles,
    options: PeftOptions & { isTrainable?: boolean } = {},
  ): PeftModel<M> {
    const { config, tensors } = readAdapter(dirOrFiles, options.onWarning);
    const peft = new PeftModel(model, config, options);
    peft.loadWeights(peft.activeAdapter, tensors, weightsName(dirOrFiles));
    const trainable = options.isTrainable ?? false;
    peft.setAdapter(peft.activeAdapter, trainable);
    if (!trainable) peft.eval();
    return peft;
  }

  /**
   * Loads another saved adapter under `name`; the active adapter and whether it trains do
   * not change. As PEFT's load_adapter, the new adapter is frozen and the model goes to
   * eval mode unless `isTrainable` (then the new adapter trains once it is set active).
   */
  loadAdapter(
    dirOrFiles: string | ModelFiles,
    name: string,
    options: { isTrainable?: boolean } = {},
  ): void {
    const { config, tensors } = readAdapter(dirOrFiles, this.warn);
    const activeTrains = this.isTraining(this.activeAdapter);
    this.addAdapter(name, config);
    this.loadWeights(name, tensors, weightsName(dirOrFiles));
    this.setAdapter(this.activeAdapter, activeTrains);
    if (!(options.isTrainable ?? false)) this.eval();
  }

  /** Whether any of an adapter's tensors require grad. */
  private isTraining(name: string): boolean {
    for (const layer of this.adapterLayers()) {
      if (!layer.adapterNames().includes(name)) continue;
      for (const t of layer.adapterState(name).values()) if (t.requiresGrad) return true;
    }
    for (const w of this.wrappers()) {
      const copy = w.copies.get(name);
      if (copy?.parameters().some((t) => t.requiresGrad)) return true;
    }
    return (
      promptEncoders(this.model)
        ?.get(name)
        ?.parameters()
        .some((t) => t.requiresGrad) ?? false
    );
  }

  /** Injects a new adapter (same method as the existing ones) without activating it. */
  addAdapter(name: string, config: AdapterConfig): void {
    checkAdapterName(name);
    if (this.peftConfig.has(name))
      throw new ValueError(`addAdapter: an adapter named "${name}" already exists`);
    const first = this.peftConfig.values().next().value as AdapterConfig | undefined;
    if (first !== undefined && first.peftType !== config.peftType) {
      throw new ValueError(
        `addAdapter: cannot mix ${first.peftType} and ${config.peftType} adapters in one model`,
      );
    }
    fillDefaultTargets(this.model, config);
    addClassifierHeads(config);
    tunerFor(config).checkNewConfig?.([...this.peftConfig.values()], config);
    try {
      tunerFor(config).inject(this.model, config, name, this.injectOptions);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new ValueError(
        `addAdapter: the ${config.peftType} adapter "${name}" is too large to allocate (r = ${(config as { r?: number }).r}): ${e.message}`,
      );
    }
    this.wrapModulesToSave(config, name);
    this.model.assignPaths();
    this.peftConfig.set(name, config);
  }

  private wrapModulesToSave(config: AdapterConfig, name: string): void {
    const wanted = [...((config as AdapterConfigBase).modulesToSave ?? [])];
    if (config.taskType === "SEQ_CLS") wanted.push(...SEQ_CLS_HEADS);
    if (wanted.length === 0) return;
    for (const [path, m] of [...this.model.namedModules()]) {
      if (
        path === "" ||
        m instanceof ModulesToSaveWrapper ||
        path.includes(".modules_to_save.") ||
        path.endsWith(".original_module")
      )
        continue;
      if (!nameMatches(wanted, path)) continue;
      replaceModule(this.model, path, new ModulesToSaveWrapper(m));
    }
    for (const w of this.wrappers()) if (!w.copies.has(name)) w.addAdapter(name);
  }

  adapterLayers(): AdapterLayer[] {
    return [...this.model.namedModules()]
      .map(([, m]) => m)
      .filter((m): m is AdapterLayer => m instanceof AdapterLayer);
  }

  private wrappers(): ModulesToSaveWrapper[] {
    return [...this.model.namedModules()]
      .map(([, m]) => m)
      .filter((m): m is ModulesToSaveWrapper => m instanceof ModulesToSaveWrapper);
  }

  /** Makes `name` the active adapter; with `trainable` its weights train and all others are frozen. */
  setAdapter(name: string, trainable = true): void {
    if (!this.peftConfig.has(name)) {
      throw new ValueError(
        `setAdapter: no adapter named "${name}" (have: ${[...this.peftConfig.keys()].join(", ")})`,
      );
    }
    this.activeAdapter = name;
    this.model.requiresGrad_(false);
    for (const layer of this.adapterLayers()) {
      layer.activeAdapters = [name];
      for (const a of layer.adapterNames()) {
        for (const t of layer.adapterState(a).values()) t.requiresGrad = trainable && a === name;
      }
    }
    for (const w of this.wrappers()) {
      w.activeAdapter = name;
      for (const [a, copy] of w.copies.namedChildren()) copy.requiresGrad_(trainable && a === name);
    }
    for (const [a, encoder] of promptEncoders(this.model)?.namedChildren() ?? [])
      encoder.requiresGrad_(trainable && a === name);
    const bias = biasOf(this.peftConfig.get(name)!);
    if (trainable && bias !== "none") {
      for (const [path, t] of this.model.namedParameters()) {
        if (!path.endsWith(".bias")) continue;
        const inLayer = path.endsWith(".base_layer.bias");
        if (bias === "all" || inLayer) t.requiresGrad = true;
      }
    }
  }

  /** Removes an adapter everywhere; the active one cannot be the last left. */
  deleteAdapter(name: string): void {
    if (!this.peftConfig.has(name))
      throw new ValueError(`deleteAdapter: no adapter named "${name}"`);
    if (this.peftConfig.size === 1)
      throw new ValueError(
        `deleteAdapter: "${name}" is the only adapter; use unload() to remove adapters entirely`,
      );
    for (const layer of this.adapterLayers()) layer.deleteAdapter(name);
    for (const w of this.wrappers()) w.copies.delete(name);
    promptEncoders(this.model)?.delete(name);
    this.peftConfig.delete(name);
    this.hooks.delete(name);
    if (this.activeAdapter === name) this.setAdapter(this.peftConfig.keys().next().value as string);
  }

  /** Runs fn with every adapter switched off (the base model alone), then switches them back on. */
  disableAdapter<T>(fn: () => T): T {
    const layers = this.adapterLayers();
    const wrappers = this.wrappers();
    for (const l of layers) l.disabled = true;
    for (const w of wrappers) w.disabled = true;
    this.promptDisabled = true;
    try {
      return fn();
    } finally {
      for (const l of layers) l.disabled = false;
      for (const w of wrappers) w.disabled = false;
      this.promptDisabled = false;
    }
  }

  /**
   * The base model's forward with the adapters. `adapterNames` (PEFT's adapter_names) gives
   * each batch row its own adapter, or "__base__" for none: one forward equal to running
   * each row alone with that adapter active.
   */
  forward(
    inputs: Parameters<M["forward"]>[0] & { adapterNames?: readonly string[] },
  ): ReturnType<M["forward"]> {
    const run = (x: unknown) =>
      (this.model.forward as (x: unknown) => ReturnType<M["forward"]>).call(this.model, x);
    const { adapterNames, ...rest } = inputs as { adapterNames?: readonly string[] };
    const prompt = this.virtualTokens();
    if (prompt !== null && adapterNames === undefined)
      return forwardWithVirtualTokens(
        prompt.model,
        prompt.encoder,
        prompt.kind,
        inputs as CausalLMInputs,
        this.warn,
      ) as ReturnType<M["forward"]>;
    if (adapterNames === undefined) return this.withLossTerm(run(inputs));
    this.checkRowAdapters(adapterNames);
    return this.withLossTerm(withRowAdapters(adapterNames, () => run(rest)));
  }

  /** The active adapter's virtual tokens (prompt learning, while not disabled), or null. */
  private virtualTokens(): {
    model: CausalLMBase & CausalLanguageModel;
    encoder: VirtualTokenEncoder;
    kind: VirtualTokenKind;
  } | null {
    if (!this.isPromptLearning(this.activeAdapter) || this.promptDisabled) return null;
    const kind = tunerFor(this.peftConfig.get(this.activeAdapter)!).virtualTokens!;
    const encoder = promptEncoders(this.model)!.get(this.activeAdapter)!;
    return { model: this.model as unknown as CausalLMBase & CausalLanguageModel, encoder, kind };
  }

  /** Whether adapter `name` is prompt learning (virtual tokens, no wrapped layer). */
  private isPromptLearning(name: string): boolean {
    const config = this.peftConfig.get(name);
    return config !== undefined && tunerFor(config).virtualTokens !== undefined;
  }

  /** The active adapter's training hooks (made once per adapter), or null for methods without. */
  trainingHooks(name = this.activeAdapter): TrainingHooks | null {
    if (!this.hooks.has(name)) {
      const config = this.peftConfig.get(name);
      if (config === undefined) throw new ValueError(`no adapter named "${name}"`);
      this.hooks.set(name, tunerFor(config).training?.(this.model, config, name) ?? null);
    }
    return this.hooks.get(name)!;
  }

  /** As PEFT: a method's loss term (AdaLoRA's orthogonality) joins every loss the model computes. */
  private withLossTerm<T>(out: T): T {
    const o = out as { loss?: Tensor };
    if (o?.loss === undefined) return out;
    const term = this.trainingHooks()?.lossTerm?.();
    if (term == null) return out;
    o.loss = add(o.loss, cast(term, o.loss.dtype));
    return out;
  }

  /** Greedy or sampled generation; `adapterNames` gives each prompt row its own adapter. */
  generate(
    inputIds: Tensor,
    options: GenerateOptions & { adapterNames?: readonly string[] } = {},
  ): Tensor {
    const m = this.model as unknown as CausalLanguageModel;
    if (typeof m.newCache !== "function")
      throw new ValueError("generate: the base model is not a causal language model");
    const { adapterNames, ...rest } = options;
    const prompt = this.virtualTokens();
    if (prompt !== null && adapterNames === undefined)
      return generate(withVirtualTokens(prompt.model, prompt.encoder, prompt.kind), inputIds, rest);
    if (adapterNames === undefined) return generate(m, inputIds, rest);
    this.checkRowAdapters(adapterNames);
    if (adapterNames.length !== inputIds.shape[0])
      throw new ShapeError(
        "generate",
        `${adapterNames.length} adapter names were given for ${inputIds.shape[0]} prompt rows`,
      );
    return withRowAdapters(adapterNames, () => generate(m, inputIds, rest));
  }

  /** As PEFT: known names (or "__base__"), nothing merged, only methods that add a delta. */
  private checkRowAdapters(names: readonly string[]): void {
    if (this.isPromptLearning(this.activeAdapter))
      throw new ValueError("adapterNames: per-row adapters do not work with prompt learning");
    const unknown = [...new Set(names)].filter((n) => n !== BASE_ROWS && !this.peftConfig.has(n));
    if (unknown.length > 0)
      throw new ValueError(
        `adapterNames: no adapter named ${unknown.map((n) => JSON.stringify(n)).join(", ")} (have: ${[...this.peftConfig.keys()].join(", ")}; "${BASE_ROWS}" for the base model)`,
      );
    const layers = this.adapterLayers();
    if (layers.some((l) => l.mergedAdapters.length > 0))
      throw new ValueError("adapterNames: cannot give rows their own adapters while one is merged");
    const other = layers.find((l) => !(l instanceof AdditiveLayer));
    if (other !== undefined)
      throw new ValueError(
        `adapterNames: per-row adapters work for methods that add a delta (LoRA, VeRA, LoHa, LoKr, AdaLoRA), not ${other.constructor.name}`,
      );
  }

  train(mode = true): this {
    this.model.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  mergeAdapter(names: readonly string[] = [this.activeAdapter]): void {
    for (const name of names)
      if (this.isPromptLearning(name))
        throw new ValueError(
          `mergeAdapter: "${name}" is a prompt-learning adapter; its virtual tokens cannot be merged into weights (as in PEFT)`,
        );
    for (const l of this.adapterLayers()) l.merge(names);
  }

  unmergeAdapter(): void {
    for (const l of this.adapterLayers()) l.unmerge();
  }

  /**
   * Merges the active adapter into the base weights and returns the plain base model.
   * With `dequantize`, 4-bit layers first become dense layers of that dtype, so the merge
   * happens in full precision, and the whole result (embeddings and norms too) is a model of
   * that dtype; otherwise a merge into 4-bit weights requantises them.
   */
  mergeAndUnload(options: { dequantize?: FloatDType } = {}): M {
    const dtype = options.dequantize;
    if (dtype !== undefined) {
      for (const [path, m] of [...this.model.namedModules()]) {
        if (m instanceof Linear4bit) replaceModule(this.model, path, m.toLinear(dtype));
      }
    }
    this.mergeAdapter();
    const model = this.unwrap(true);
    return dtype === undefined ? model : model.to(dtype);
  }

  /** Removes every adapter without merging and returns the plain base model. */
  unload(): M {
    this.unmergeAdapter();
    return this.unwrap(false);
  }

  private unwrap(keepCopies: boolean): M {
    if (promptEncoders(this.model) !== null) this.model.removeModule(PROMPT_ENCODER);
    for (const l of this.adapterLayers()) replaceModule(this.model, l.path, l.base);
    for (const w of this.wrappers())
      replaceModule(this.model, w.path, keepCopies ? w.current() : w.original);
    return this.model;
  }

  /** [trainable, total] parameter counts. */
  getNbTrainableParameters(): [number, number] {
    let trainable = 0;
    let total = 0;
    for (const t of this.model.parameters()) {
      total += t.size;
      if (t.requiresGrad) trainable += t.size;
    }
    // 4-bit weights are not parameters, but they are part of the model's size.
    for (const [, m] of this.model.namedModules())
      if (m instanceof Linear4bit) total += m.inFeatures * m.outFeatures;
    return [trainable, total];
  }

  printTrainableParameters(log: (line: string) => void = console.log): void {
    const [t, all] = this.getNbTrainableParameters();
    log(
      `trainable params: ${t.toLocaleString("en-US")} || all params: ${all.toLocaleString("en-US")} || trainable%: ${((100 * t) / all).toFixed(4)}`,
    );
  }

  /** The adapter's tensors under PEFT's saved key names. */
  adapterStateDict(name = this.activeAdapter): Map<string, Tensor> {
    const config = this.peftConfig.get(name);
    if (config === undefined) throw new ValueError(`no adapter named "${name}"`);
    const out = new Map<string, Tensor>();
    for (const l of this.adapterLayers()) {
      if (!l.adapterNames().includes(name)) continue;
      for (const [suffix, t] of l.adapterState(name)) out.set(`${PREFIX}${l.path}.${suffix}`, t);
    }
    for (const w of this.wrappers()) {
      const copy = w.copies.get(name);
      if (copy === undefined) continue;
      for (const [p, t] of copy.stateDict()) out.set(`${PREFIX}${w.path}.${p}`, t);
    }
    const bias = biasOf(config);
    if (bias !== "none") {
      for (const [path, t] of this.model.namedParameters()) {
        if (
          !path.endsWith(".bias") ||
          path.includes(".modules_to_save.") ||
          path.includes("original_module")
        )
          continue;
        if (bias === "all" || path.endsWith(".base_layer.bias"))
          out.set(`${PREFIX}${path.replace(".base_layer.", ".")}`, t);
      }
    }
    const extra = tunerFor(config).extraState?.(this.model, config, name);
    if (extra) for (const [k, t] of extra) out.set(k, t);
    return out;
  }

  /**
   * Saves adapters as PEFT does: the "default" adapter in `dir`, others in `dir/<name>`,
   * each as adapter_config.json and adapter_model.safetensors.
   */
  savePretrained(dir: string, options?: { selectedAdapters?: string[] }): void;
  /**
   * Without a directory (in browsers, for a download): the files savePretrained(dir) would
   * write, as bytes by their path in it ("adapter_config.json", "other/adapter_config.json").
   * MemoryFiles.inFolder(files, name) gives one adapter's files to fromPretrained.
   */
  savePretrained(options?: { selectedAdapters?: string[] }): FolderFiles;
  savePretrained(
    dirOrOptions?: string | { selectedAdapters?: string[] },
    options: { selectedAdapters?: string[] } = {},
  ): FolderFiles | undefined {
    const toDir = typeof dirOrOptions === "string";
    const { selectedAdapters } = toDir ? options : (dirOrOptions ?? {});
    const files: FolderFiles = {};
    for (const name of selectedAdapters ?? [...this.peftConfig.keys()]) {
      if (toDir) {
        const { config, tensors } = this.savedAdapter(name, "savePretrained");
        writeAdapter(adapterDir(dirOrOptions, name), config, tensors);
      } else
        for (const [file, bytes] of Object.entries(this.adapterFiles(name)))
          files[adapterPath(name) + file] = bytes;
    }
    return toDir ? undefined : files;
  }

  /**
   * The files savePretrained writes for one adapter, as bytes (for a download, or to keep
   * in memory): adapter_config.json and adapter_model.safetensors, byte for byte the same.
   * PeftModel.fromPretrained takes them back as a MemoryFiles.
   */
  adapterFiles(
    name = this.activeAdapter,
  ): Record<typeof CONFIG_NAME | typeof WEIGHTS_NAME, Uint8Array> {
    const { config, tensors } = this.savedAdapter(name, "adapterFiles");
    const bytes = adapterBytes(config, tensors);
    return { [CONFIG_NAME]: bytes.config, [WEIGHTS_NAME]: concatBytes(bytes.weights) };
  }

  private savedAdapter(name: string, caller: string) {
    const config = this.peftConfig.get(name);
    if (config === undefined) throw new ValueError(`${caller}: no adapter named "${name}"`);
    const tensors = this.adapterStateDict(name);
    return { config, tensors: tunerFor(config).savedTensors?.(config, name, tensors) ?? tensors };
  }

  /**
   * Loads an adapter's weights (a directory, or its files) into the existing adapter `name`
   * (checkpoints); `replace` gives tensors by key that take the file's place (a run's
   * unpruned ones).
   */
  loadWeightsInto(
    name: string,
    dir: string | ModelFiles,
    replace: ReadonlyMap<string, Tensor> = new Map(),
  ): void {
    const tensors = readAdapter(dir, this.warn).tensors;
    for (const [k, t] of replace) tensors.set(k, t);
    this.loadWeights(name, tensors, weightsName(dir));
  }

  private loadWeights(name: string, tensors: Map<string, Tensor>, file: string): void {
    const expected = this.adapterStateDict(name);
    const config = this.peftConfig.get(name)!;
    const consumed = new Set(
      tunerFor(config).loadExtraState?.(this.model, config, name, tensors) ?? [],
    );
    const missing: string[] = [];
    for (const [key, target] of expected) {
      if (consumed.has(key)) continue;
      const value = tensors.get(key);
      if (value === undefined) {
        missing.push(key);
        continue;
      }
      if (!sameShape(value.shape, target.shape)) {
        throw new ShapeError(
          "loadAdapter",
          `tensor "${key}" in ${file} has shape ${fmt(value.shape)} but the model expects ${fmt(target.shape)} (was the adapter made for another model?)`,
        );
      }
      consumed.add(key);
      this.assign(target, value);
    }
    if (missing.length > 0) {
      throw new FileFormatError(
        file,
        `missing ${missing.length} adapter tensor(s): ${missing.slice(0, 6).join(", ")}${missing.length > 6 ? ", ..." : ""}`,
      );
    }
    const unexpected = [...tensors.keys()].filter((k) => !consumed.has(k));
    if (unexpected.length > 0)
      this.warn(
        `${file}: ${unexpected.length} tensor(s) not used: ${unexpected.slice(0, 6).join(", ")}`,
      );
  }

  /** Copies a loaded value into the model's own tensor, so references (optimizers) stay valid. */
  private assign(target: Tensor, value: Tensor): void {
    const converted = value.dtype === target.dtype ? value : value.to(target.dtype);
    overwrite(target.data, converted.data);
  }
}

/** As PEFT: targetModules null means the method's targets for the model's type, where it has them. */
function fillDefaultTargets(model: Module, config: AdapterConfig): void {
  const c = config as { targetModules?: string[] | string | null };
  if (!("targetModules" in c) || c.targetModules !== null) return;
  const type = modelTypeOf(model);
  const table = methodFor(config).defaultTargets;
  const targets = type === null ? undefined : table?.[type];
  if (targets === undefined)
    throw new ValueError(
      `targetModules is required: PEFT has no default ${config.peftType} targets for ${type === null ? "this model" : `model_type "${type}"`}; give module names, a regex, or "all-linear"`,
    );
  c.targetModules = [...targets];
}

/**
 * As PEFT's PeftModelForSequenceClassification, each SEQ_CLS adapter added (created or
 * loaded) appends the classifier heads to its config's modules_to_save, which is thus
 * saved as ["classifier", "score"] when it was null.
 */
function addClassifierHeads(config: AdapterConfig): void {
  const c = config as { modulesToSave?: string[] | null };
  if (config.taskType !== "SEQ_CLS" || !("modulesToSave" in c)) return;
  c.modulesToSave = [...(c.modulesToSave ?? []), ...SEQ_CLS_HEADS];
}

/**
 * Adapter names become folder names when saved (PEFT saves adapter "x" in `dir/x`), so a
 * name is one plain path component that cannot reach outside the output directory or
 * land on the default adapter's files.
 */
export function checkAdapterName(name: string): void {
  const bad =
    typeof name !== "string"
      ? "it is not a string"
      : name === "" || name.trim() === ""
        ? "it is empty"
        : name === "." || name === ".."
          ? `"${name}" names a directory itself`
          : /[/\\\0]/.test(name)
            ? "it contains a path separator or NUL"
            : name === CONFIG_NAME || name === WEIGHTS_NAME
              ? "it is the name of an adapter file"
              : null;
  if (bad !== null)
    throw new ValueError(
      `adapter name ${JSON.stringify(name)} is not allowed: ${bad}; use a plain name such as "default" or "math"`,
    );
}

/** Wraps a model with a new adapter (PEFT's get_peft_model). */
export function getPeftModel<M extends BaseModel>(
  model: M,
  config: AdapterConfig | AdapterConfigInit,
  options: PeftOptions = {},
): PeftModel<M> {
  const c = toConfig(config);
  // PEFT records where the base model came from (transformers' name_or_path).
  const source = modelNameOrPath(model);
  if (source !== undefined) c.baseModelNameOrPath = source;
  return new PeftModel(model, c, options);
}

/** A config object, or plain JSON-like fields with a peftType. */
export function toConfig(config: AdapterConfig | AdapterConfigInit): AdapterConfig {
  if (Object.values(PEFT_METHODS).some((m) => config instanceof m.config))
    return config as AdapterConfig;
  const { peftType, ...fields } = config;
  if (!isPeftType(peftType))
    throw new ValueError(
      `unknown peftType ${JSON.stringify(peftType)}: expected one of ${PEFT_TYPES.map((t) => JSON.stringify(t)).join(", ")}`,
    );
  return new PEFT_METHODS[peftType].config(fields as never) as AdapterConfig;
}
