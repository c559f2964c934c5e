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
  checkPositiveInt,
  fromSnakeCase,
  type TaskType,
} from "../../config.js";
import { stripUndefined } from "../lora/config.js";

export interface VeraConfigFields extends BaseConfigFields {
  r?: number;
  /** Seed of the shared random projections (PyTorch's CPU generator, reproduced bit for bit). */
  projectionPrngKey?: number;
  /** Save vera_A/vera_B with the adapter (default true); otherwise they are regenerated from the seed. */
  saveProjection?: boolean;
  veraDropout?: number;
  dInitial?: number;
  initWeights?: boolean;
}

// PEFT 0.13.2's VeraConfig keys and defaults (adapter_config.json).
const DEFAULTS = {
  autoMapping: null,
  baseModelNameOrPath: null,
  bias: "none",
  dInitial: 0.1,
  fanInFanOut: false,
  inferenceMode: false,
  initWeights: true,
  layersPattern: null,
  layersToTransform: null,
  modulesToSave: null,
  projectionPrngKey: 0,
  r: 256,
  revision: null,
  saveProjection: true,
  targetModules: null,
  taskType: null,
  veraDropout: 0,
} as const;

/** VeRA settings with PEFT's names and defaults; no alpha (the scaling vectors learn it). */
export class VeraConfig {
  readonly peftType = "VERA" as const;
  r: number;
  targetModules: string[] | string | null;
  excludeModules: string[] | string | null;
  projectionPrngKey: number;
  saveProjection: boolean;
  veraDropout: number;
  dInitial: number;
  fanInFanOut: boolean;
  bias: "none" | "all" | "vera_only";
  modulesToSave: string[] | null;
  initWeights: boolean;
  layersToTransform: number[] | number | null;
  layersPattern: string[] | string | null;
  taskType: TaskType | null;
  baseModelNameOrPath: string | null;
  revision: string | null;
  inferenceMode: boolean;
  extra: Record<string, unknown>;

  constructor(fields: VeraConfigFields & { extra?: Record<string, unknown> } = {}) {
    const f = { ...DEFAULTS, ...stripUndefined(fields) } as Required<VeraConfigFields> &
      typeof DEFAULTS;
    this.r = checkPositiveInt("VeraConfig.r", f.r);
    this.targetModules = checkModuleSpec("VeraConfig.targetModules", f.targetModules);
    this.excludeModules = checkModuleSpec("VeraConfig.excludeModules", fields.excludeModules);
    if (!Number.isSafeInteger(f.projectionPrngKey) || f.projectionPrngKey < 0)
      throw new ValueError(
        `VeraConfig.projectionPrngKey must be an integer, got ${JSON.stringify(f.projectionPrngKey)}`,
      );
    this.projectionPrngKey = f.projectionPrngKey;
    this.saveProjection = checkBool("VeraConfig.saveProjection", f.saveProjection);
    if (!(typeof f.veraDropout === "number" && f.veraDropout >= 0 && f.veraDropout < 1))
      throw new ValueError(`VeraConfig.veraDropout must be in [0, 1), got ${f.veraDropout}`);
    this.veraDropout = f.veraDropout;
    this.dInitial = checkNumber("VeraConfig.dInitial", f.dInitial);
    this.fanInFanOut = checkBool("VeraConfig.fanInFanOut", f.fanInFanOut);
    if (!["none", "all", "vera_only"].includes(f.bias))
      throw new ValueError(
        `VeraConfig.bias must be "none", "all" or "vera_only", got ${JSON.stringify(f.bias)}`,
      );
    this.bias = f.bias as "none" | "all" | "vera_only";
    this.modulesToSave = checkNameList("VeraConfig.modulesToSave", f.modulesToSave);
    this.initWeights = checkBool("VeraConfig.initWeights", f.initWeights);
    this.layersToTransform = checkLayers("VeraConfig.layersToTransform", f.layersToTransform);
    this.layersPattern = checkLayersPattern("VeraConfig.layersPattern", f.layersPattern);
    this.taskType = (checkOptionalString("VeraConfig.taskType", f.taskType) as TaskType) ?? null;
    this.baseModelNameOrPath = checkOptionalString(
      "VeraConfig.baseModelNameOrPath",
      f.baseModelNameOrPath,
    );
    this.revision = checkOptionalString("VeraConfig.revision", f.revision);
    this.inferenceMode = checkBool("VeraConfig.inferenceMode", f.inferenceMode ?? false);
    this.extra = { ...(fields.extra ?? {}) };
  }

  static fromJson(json: Record<string, unknown>): VeraConfig {
    const known = new Set([...Object.keys(DEFAULTS), "excludeModules", "peftType"]);
    const { fields, extra } = fromSnakeCase(json, known);
    delete fields.peftType;
    return new VeraConfig({ ...(fields as VeraConfigFields), extra });
  }

  toJson(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      ...this.extra,
      auto_mapping: null,
      base_model_name_or_path: this.baseModelNameOrPath,
      bias: this.bias,
      d_initial: this.dInitial,
      fan_in_fan_out: this.fanInFanOut,
      inference_mode: this.inferenceMode,
      init_weights: this.initWeights,
      layers_pattern: this.layersPattern,
      layers_to_transform: this.layersToTransform,
      modules_to_save: this.modulesToSave,
      peft_type: this.peftType,
      projection_prng_key: this.projectionPrngKey,
      r: this.r,
      revision: this.revision,
      save_projection: this.saveProjection,
      target_modules: this.targetModules,
      task_type: this.taskType,
      vera_dropout: this.veraDropout,
    };
    if (this.excludeModules !== null) out.exclude_modules = this.excludeModules;
    return out;
  }
}
