import { ValueError } from "../errors.js";
import {
  camelToSnake,
  checkBool,
  checkLayers,
  checkLayersPattern,
  checkModuleSpec,
  checkNameList,
  checkOptionalString,
  type TaskType,
} from "./config.js";

/** One field of an adapter config: its default and the check that validates (and copies) a value. */
export interface Field<T> {
  readonly default: T;
  readonly check: (name: string, v: unknown) => T;
  /** The adapter_config.json key when it is not the snake_case of the field (AdaLoRA's deltaT). */
  readonly key?: string;
  /** Left out of adapter_config.json while null (keys newer than PEFT 0.13.2, e.g. exclude_modules). */
  readonly omitNull?: boolean;
}

export type FieldTable = Record<string, Field<unknown>>;

export type FieldValues<T extends FieldTable> = {
  -readonly [K in keyof T]: T[K] extends Field<infer V> ? V : never;
};

/** Fields a config is built from: any subset of the table's, plus keys of a newer PEFT to keep. */
export type ConfigInit<T extends FieldTable> = Partial<FieldValues<T>> & {
  extra?: Record<string, unknown>;
};

export type ConfigOf<P extends string, T extends FieldTable> = FieldValues<T> & {
  readonly peftType: P;
  /** Keys of adapter_config.json this version does not interpret, written back as they were. */
  extra: Record<string, unknown>;
  /** adapter_config.json's object: PEFT's keys and values. */
  toJson(): Record<string, unknown>;
};

export interface ConfigClass<P extends string, T extends FieldTable> {
  new (init?: ConfigInit<T>): ConfigOf<P, T>;
  /** From adapter_config.json's object (snake_case). */
  fromJson(json: Record<string, unknown>): ConfigOf<P, T>;
  readonly peftType: P;
  readonly fields: T;
}

export function field<T>(
  defaultValue: T,
  check: (name: string, v: unknown) => T,
  more: { key?: string; omitNull?: boolean } = {},
): Field<T> {
  return { default: defaultValue, check, ...more };
}

/** A PEFT key peft-ts does not interpret: any JSON value, written back unchanged. */
export function keep<T>(defaultValue: T): Field<T> {
  return { default: defaultValue, check: (_name, v) => structuredClone(v) as T };
}

/** A field whose only supported value is its default (anything else would change the model). */
export function onlyDefault<T>(defaultValue: T, what: string): Field<T> {
  return {
    default: defaultValue,
    check: (name, v) => {
      if (JSON.stringify(v) !== JSON.stringify(defaultValue))
        throw new ValueError(
          `${name} (${what}) is not supported, got ${JSON.stringify(v)?.slice(0, 80)}`,
        );
      return structuredClone(v) as T;
    },
  };
}

export function oneOf<const T extends readonly unknown[]>(choices: T) {
  return (name: string, v: unknown): T[number] => {
    if (!choices.includes(v))
      throw new ValueError(
        `${name} must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, got ${JSON.stringify(v)?.slice(0, 80)}`,
      );
    return v as T[number];
  };
}

export function checkProbability(name: string, v: unknown): number {
  if (!(typeof v === "number" && v >= 0 && v < 1))
    throw new ValueError(`${name} must be a number in [0, 1), got ${JSON.stringify(v)}`);
  return v;
}

/** PeftConfig's own keys, in every adapter_config.json. */
export const PEFT_CONFIG_FIELDS = {
  autoMapping: keep(null as unknown),
  baseModelNameOrPath: field(null as string | null, checkOptionalString),
  revision: field(null as string | null, checkOptionalString),
  taskType: field(null as TaskType | null, (n, v) => checkOptionalString(n, v) as TaskType | null),
  inferenceMode: field(false, checkBool),
};

/** Which modules an adapter goes on, and which are trained whole beside it. */
export const TARGET_FIELDS = {
  /** Module names (suffix match), a regex (full match), or "all-linear". */
  targetModules: field(null as string[] | string | null, checkModuleSpec),
  excludeModules: field(null as string[] | string | null, checkModuleSpec, { omitNull: true }),
  modulesToSave: field(null as string[] | null, checkNameList),
};

/** Which decoder layers, for the methods that have PEFT's layers_to_transform. */
export const LAYER_FIELDS = {
  layersToTransform: field(null as number[] | number | null, checkLayers),
  layersPattern: field(null as string[] | string | null, checkLayersPattern),
};

/** Both of the above, as LoRA-like tuners have them. */
export const TARGETING_FIELDS = { ...TARGET_FIELDS, ...LAYER_FIELDS };

/**
 * A config class made from one field table: the constructor fills defaults and checks
 * every value (naming the class and field), fromJson reads PEFT's snake_case keys and
 * toJson writes them, keys of a newer PEFT pass through in `extra`.
 */
export function configClass<const P extends string, T extends FieldTable>(
  peftType: P,
  className: string,
  fields: T,
): ConfigClass<P, T> {
  const keyOf = (k: string) => fields[k].key ?? camelToSnake(k);
  const byKey = new Map(Object.keys(fields).map((k) => [keyOf(k), k]));
  class Config {
    static readonly peftType = peftType;
    static readonly fields = fields;
    readonly peftType = peftType;
    extra: Record<string, unknown>;

    constructor(init: ConfigInit<T> = {}) {
      const given = init as Record<string, unknown>;
      const unknown = Object.keys(given).filter(
        (k) => k !== "extra" && k !== "peftType" && !Object.hasOwn(fields, k),
      );
      if (unknown.length > 0)
        throw new ValueError(
          `${className}: unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(", ")}; known: ${Object.keys(fields).join(", ")}`,
        );
      const self = this as unknown as Record<string, unknown>;
      for (const [k, f] of Object.entries(fields)) {
        const v = given[k];
        self[k] = f.check(`${className}.${k}`, v === undefined ? structuredClone(f.default) : v);
      }
      this.extra = { ...(init.extra ?? {}) };
    }

    static fromJson(json: Record<string, unknown>): Config {
      const init: Record<string, unknown> = {};
      const extra: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(json)) {
        if (k === "peft_type") continue;
        const name = byKey.get(k);
        if (name !== undefined) init[name] = v;
        else extra[k] = v;
      }
      return new this({ ...init, extra } as ConfigInit<T>);
    }

    toJson(): Record<string, unknown> {
      const self = this as unknown as Record<string, unknown>;
      const out: Record<string, unknown> = { ...this.extra, peft_type: peftType };
      for (const [k, f] of Object.entries(fields)) {
        if (f.omitNull && self[k] === null) continue;
        out[keyOf(k)] = structuredClone(self[k]);
      }
      return out;
    }
  }
  return Config as unknown as ConfigClass<P, T>;
}
