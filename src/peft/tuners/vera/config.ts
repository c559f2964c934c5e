import { ValueError } from "../../../errors.js";
import {
  type BaseConfigFields,
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
    this.targetModules = f.targetModules ?? null;
    this.excludeModules = fields.excludeModules ?? null;
    if (!Number.isInteger(f.projectionPrngKey))
      throw new ValueError(
        `VeraConfig.projectionPrngKey must be an integer, got ${JSON.stringify(f.projectionPrngKey)}`,
      );
    this.projectionPrngKey = f.projectionPrngKey;
    this.saveProjection = f.saveProjection;
    if (!(f.veraDropout >= 0 && f.veraDropout < 1))
      throw new ValueError(`VeraConfig.veraDropout must be in [0, 1), got ${f.veraDropout}`);
    this.veraDropout = f.veraDropout;
    this.dInitial = f.dInitial;
    this.fanInFanOut = f.fanInFanOut;
    if (!["none", "all", "vera_only"].includes(f.bias))
      throw new ValueError(
        `VeraConfig.bias must be "none", "all" or "vera_only", got ${JSON.stringify(f.bias)}`,
      );
    this.bias = f.bias as "none" | "all" | "vera_only";
    this.modulesToSave = f.modulesToSave ?? null;
    this.initWeights = f.initWeights;
    this.layersToTransform = f.layersToTransform ?? null;
    this.layersPattern = f.layersPattern ?? null;
    this.taskType = f.taskType ?? null;
    this.baseModelNameOrPath = f.baseModelNameOrPath ?? null;
    this.revision = f.revision ?? null;
    this.inferenceMode = f.inferenceMode ?? false;
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
