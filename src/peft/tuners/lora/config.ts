import { ValueError } from "../../../errors.js";
import { checkBool, checkNumber, checkPatternMap, checkPositiveInt } from "../../config.js";
import {
  type ConfigInit,
  checkProbability,
  configClass,
  field,
  keep,
  oneOf,
  onlyDefault,
  PEFT_CONFIG_FIELDS,
  TARGETING_FIELDS,
} from "../../config-table.js";

function checkInit(name: string, v: unknown): boolean | "gaussian" {
  if (v !== true && v !== false && v !== "gaussian")
    throw new ValueError(
      `${name} must be true, false or "gaussian" (other PEFT initialisations are not implemented), got ${JSON.stringify(v)}`,
    );
  return v;
}

/** PEFT 0.13.2's LoraConfig keys (adapter_config.json) with their defaults. */
export const LORA_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  ...TARGETING_FIELDS,
  r: field(8, checkPositiveInt),
  loraAlpha: field(8, checkNumber),
  loraDropout: field(0, checkProbability),
  fanInFanOut: field(false, checkBool),
  bias: field("none" as "none" | "all" | "lora_only", oneOf(["none", "all", "lora_only"] as const)),
  useRslora: field(false, checkBool),
  /** true: Kaiming-uniform A and zero B; "gaussian": normal A (std 1/r) and zero B; false: both random. */
  initLoraWeights: field(true as boolean | "gaussian", checkInit),
  useDora: field(false, checkBool),
  rankPattern: field({} as Record<string, number>, (n, v) =>
    checkPatternMap(n, v, checkPositiveInt),
  ),
  alphaPattern: field({} as Record<string, number>, (n, v) => checkPatternMap(n, v, checkNumber)),
  // Never ignored silently: it would change which layers exist.
  layerReplication: onlyDefault(null, "PEFT's layer_replication"),
  loftqConfig: keep({} as unknown),
  megatronConfig: keep(null as unknown),
  megatronCore: keep("megatron.core" as unknown),
};

export type LoraConfigFields = ConfigInit<typeof LORA_FIELDS>;

/** LoRA, rsLoRA and DoRA settings, with PEFT's names (camelCase here, snake_case on disk) and defaults. */
export class LoraConfig extends configClass("LORA", "LoraConfig", LORA_FIELDS) {}
