import { ValueError } from "../../../errors.js";
import {
  type BaseConfigFields,
  checkBool,
  checkLayers,
  checkLayersPattern,
  checkModuleSpec,
  checkNameList,
  checkNumber,
  checkOptionalString,
  checkPatternMap,
  checkPositiveInt,
  fromSnakeCase,
  type TaskType,
} from "../../config.js";

export interface LoraConfigFields extends BaseConfigFields {
  r?: number;
  loraAlpha?: number;
  loraDropout?: number;
  /** true: Kaiming-uniform A and zero B; "gaussian": normal A (std 1/r) and zero B; false: both random. */
  initLoraWeights?: boolean | "gaussian";
  useRslora?: boolean;
  useDora?: boolean;
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
}

// PEFT 0.13.2's LoraConfig keys (as adapter_config.json has them), with their defaults.
const DEFAULTS = {
  alphaPattern: {},
  autoMapping: null,
  baseModelNameOrPath: null,
  bias: "none",
  fanInFanOut: false,
  inferenceMode: false,
  initLoraWeights: true,
  layerReplication: null,
  layersPattern: null,
  layersToTransform: null,
  loftqConfig: {},
  loraAlpha: 8,
  loraDropout: 0,
  megatronConfig: null,
  megatronCore: "megatron.core",
  modulesToSave: null,
  r: 8,
  rankPattern: {},
  revision: null,
  targetModules: null,
  taskType: null,
  useDora: false,
  useRslora: false,
} as const;

/** LoRA, rsLoRA and DoRA settings, with PEFT's names (camelCase here, snake_case on disk) and defaults. */
export class LoraConfig {
  readonly peftType = "LORA" as const;
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: string[] | string | null;
  excludeModules: string[] | string | null;
  fanInFanOut: boolean;
  bias: "none" | "all" | "lora_only";
  useRslora: boolean;
  useDora: boolean;
  modulesToSave: string[] | null;
  initLoraWeights: boolean | "gaussian";
  layersToTransform: number[] | number | null;
  layersPattern: string[] | string | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  taskType: TaskType | null;
  baseModelNameOrPath: string | null;
  revision: string | null;
  inferenceMode: boolean;
  /** Keys of adapter_config.json this version does not interpret, written back as they were. */
  extra: Record<string, unknown>;

  constructor(fields: LoraConfigFields & { extra?: Record<string, unknown> } = {}) {
    const f = { ...DEFAULTS, ...stripUndefined(fields) } as Required<LoraConfigFields> &
      typeof DEFAULTS;
    this.r = checkPositiveInt("LoraConfig.r", f.r);
    this.loraAlpha = checkNumber("LoraConfig.loraAlpha", f.loraAlpha);
    if (!(typeof f.loraDropout === "number" && f.loraDropout >= 0 && f.loraDropout < 1))
      throw new ValueError(`LoraConfig.loraDropout must be in [0, 1), got ${f.loraDropout}`);
    this.loraDropout = f.loraDropout;
    this.targetModules = checkModuleSpec("LoraConfig.targetModules", f.targetModules);
    this.excludeModules = checkModuleSpec("LoraConfig.excludeModules", fields.excludeModules);
    this.fanInFanOut = checkBool("LoraConfig.fanInFanOut", f.fanInFanOut);
    if (!["none", "all", "lora_only"].includes(f.bias))
      throw new ValueError(
        `LoraConfig.bias must be "none", "all" or "lora_only", got ${JSON.stringify(f.bias)}`,
      );
    this.bias = f.bias as "none" | "all" | "lora_only";
    this.useRslora = checkBool("LoraConfig.useRslora", f.useRslora);
    this.useDora = checkBool("LoraConfig.useDora", f.useDora);
    this.modulesToSave = checkNameList("LoraConfig.modulesToSave", f.modulesToSave);
    if (
      f.initLoraWeights !== true &&
      f.initLoraWeights !== false &&
      f.initLoraWeights !== "gaussian"
    ) {
      throw new ValueError(
        `LoraConfig.initLoraWeights must be true, false or "gaussian" (other PEFT initialisations are not implemented), got ${JSON.stringify(f.initLoraWeights)}`,
      );
    }
    this.initLoraWeights = f.initLoraWeights;
    this.layersToTransform = checkLayers("LoraConfig.layersToTransform", f.layersToTransform);
    this.layersPattern = checkLayersPattern("LoraConfig.layersPattern", f.layersPattern);
    this.rankPattern = checkPatternMap("LoraConfig.rankPattern", f.rankPattern, checkPositiveInt);
    this.alphaPattern = checkPatternMap("LoraConfig.alphaPattern", f.alphaPattern, checkNumber);
    this.taskType = (checkOptionalString("LoraConfig.taskType", f.taskType) as TaskType) ?? null;
    this.baseModelNameOrPath = checkOptionalString(
      "LoraConfig.baseModelNameOrPath",
      f.baseModelNameOrPath,
    );
    this.revision = checkOptionalString("LoraConfig.revision", f.revision);
    this.inferenceMode = checkBool("LoraConfig.inferenceMode", f.inferenceMode ?? false);
    // Never ignored silently: it would change which layers exist.
    const replication = (fields as { layerReplication?: unknown }).layerReplication;
    if (replication != null)
      throw new ValueError(
        `LoraConfig.layerReplication (PEFT's layer_replication) is not supported, got ${JSON.stringify(replication).slice(0, 80)}`,
      );
    this.extra = { ...(fields.extra ?? {}) };
  }

  /** From adapter_config.json's object (snake_case). */
  static fromJson(json: Record<string, unknown>): LoraConfig {
    const known = new Set([...Object.keys(DEFAULTS), "excludeModules", "peftType"]);
    const { fields, extra } = fromSnakeCase(json, known);
    delete fields.peftType;
    return new LoraConfig({ ...(fields as LoraConfigFields), extra });
  }

  /** adapter_config.json's object: PEFT's keys and values. */
  toJson(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      ...this.extra,
      alpha_pattern: this.alphaPattern,
      auto_mapping: null,
      base_model_name_or_path: this.baseModelNameOrPath,
      bias: this.bias,
      fan_in_fan_out: this.fanInFanOut,
      inference_mode: this.inferenceMode,
      init_lora_weights: this.initLoraWeights,
      layer_replication: null,
      layers_pattern: this.layersPattern,
      layers_to_transform: this.layersToTransform,
      loftq_config: {},
      lora_alpha: this.loraAlpha,
      lora_dropout: this.loraDropout,
      megatron_config: null,
      megatron_core: "megatron.core",
      modules_to_save: this.modulesToSave,
      peft_type: this.peftType,
      r: this.r,
      rank_pattern: this.rankPattern,
      revision: this.revision,
      target_modules: this.targetModules,
      task_type: this.taskType,
      use_dora: this.useDora,
      use_rslora: this.useRslora,
    };
    if (this.excludeModules !== null) out.exclude_modules = this.excludeModules;
    return out;
  }
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
