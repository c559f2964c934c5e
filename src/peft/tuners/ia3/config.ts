import { ValueError } from "../../../errors.js";
import { checkBool, checkModuleSpec } from "../../config.js";
import {
  type ConfigInit,
  configClass,
  field,
  PEFT_CONFIG_FIELDS,
  TARGET_FIELDS,
} from "../../config-table.js";

/** PEFT 0.13.2's IA3Config keys and defaults. */
export const IA3_FIELDS = {
  ...PEFT_CONFIG_FIELDS,
  ...TARGET_FIELDS,
  /** Layers whose input is scaled (feed-forward down projections); the others scale their output. */
  feedforwardModules: field(null as string[] | string | null, checkModuleSpec),
  fanInFanOut: field(false, checkBool),
  /** true: the scales start at 1 (the layer unchanged); false: random. */
  initIa3Weights: field(true, checkBool),
};

export type IA3ConfigFields = ConfigInit<typeof IA3_FIELDS>;

/** (IA)³: learned scales of activations, one vector per layer. */
export class IA3Config extends configClass("IA3", "IA3Config", IA3_FIELDS) {
  constructor(init: IA3ConfigFields = {}) {
    super(init);
    const t = this.targetModules;
    const f = this.feedforwardModules;
    // As PEFT: a feed-forward module must be one of the targets.
    if (Array.isArray(t) && Array.isArray(f)) {
      const outside = f.filter((m) => !t.includes(m));
      if (outside.length > 0)
        throw new ValueError(
          `IA3Config.feedforwardModules must be a subset of targetModules; not targeted: ${outside.join(", ")}`,
        );
    }
  }
}
