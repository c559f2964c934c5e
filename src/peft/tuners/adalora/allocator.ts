import { ValueError } from "../../../errors.js";
import { overwrite } from "../../../tensor/storage-version.js";
import { Tensor } from "../../../tensor/tensor.js";
import type { AdaLoraConfig, RankMasks } from "./config.js";
import type { AdaLoraFactor, AdaLoraLayer } from "./layer.js";

/** The key of a module's mask in rank_pattern (PEFT's, without the adapter name). */
export const maskKey = (path: string) => `${path}.lora_E`;

interface Smoothed {
  /** Sensitivity |p·∇p| smoothed over steps (beta1), and its uncertainty (beta2). */
  ipt: Float64Array;
  unc: Float64Array;
}

/**
 * PEFT's RankAllocator: scores each rank of each module by the smoothed sensitivity of its
 * singular value and vectors, and while the budget (total rank) shrinks along a cubic
 * schedule, zeroes the singular values of the lowest-scoring ranks.
 */
export class RankAllocator {
  private smoothed = new Map<Tensor, Smoothed>();
  readonly initBudget: number;
  readonly targetBudget: number;

  constructor(
    private readonly layers: readonly AdaLoraLayer[],
    private readonly config: AdaLoraConfig,
    private readonly adapter: string,
  ) {
    this.initBudget = layers.reduce((n, l) => n + l.settingsOf(adapter).r, 0);
    this.targetBudget = config.targetR * layers.length;
  }

  private totalStep(): number {
    const total = this.config.totalStep;
    if (total === null)
      throw new ValueError(
        "AdaLoRA: totalStep is null; set it to the run's number of optimizer steps (the schedule spans it)",
      );
    return total;
  }

  /** The budget at `step` and whether this step masks (PEFT's budget_schedule). */
  budgetAt(step: number): { budget: number; mask: boolean } {
    const { tinit, tfinal, deltaT } = this.config;
    const total = this.totalStep();
    if (step <= tinit) return { budget: this.initBudget, mask: false };
    if (step > total - tfinal) return { budget: this.targetBudget, mask: true };
    const left = 1 - (step - tinit) / (total - tfinal - tinit);
    const budget = Math.trunc(
      (this.initBudget - this.targetBudget) * left ** 3 + this.targetBudget,
    );
    return { budget, mask: step % deltaT === 0 };
  }

  private factors(layer: AdaLoraLayer): Record<AdaLoraFactor, Tensor> {
    const f = (d: AdaLoraFactor) => layer.factor(d, this.adapter);
    return { lora_A: f("lora_A"), lora_E: f("lora_E"), lora_B: f("lora_B") };
  }

  /** Folds |p·∇p| of every factor into the smoothed sensitivity and uncertainty. */
  private updateSensitivity(): void {
    const { beta1, beta2 } = this.config;
    for (const layer of this.layers) {
      for (const p of Object.values(this.factors(layer))) {
        if (p.grad === null) continue;
        let s = this.smoothed.get(p);
        if (s === undefined) {
          s = { ipt: new Float64Array(p.size), unc: new Float64Array(p.size) };
          this.smoothed.set(p, s);
        }
        const v = p.toFloat32Array();
        const g = p.grad.toFloat32Array();
        for (let i = 0; i < v.length; i++) {
          const ipt = Math.abs(v[i] * g[i]);
          s.ipt[i] = beta1 * s.ipt[i] + (1 - beta1) * ipt;
          s.unc[i] = beta2 * s.unc[i] + (1 - beta2) * Math.abs(ipt - s.ipt[i]);
        }
      }
    }
  }

  /** Sensitivity times uncertainty of each element of p (0 before any update). */
  private score(p: Tensor, i: number): number {
    const s = this.smoothed.get(p);
    return s === undefined ? 0 : s.ipt[i] * s.unc[i];
  }

  /** One score per rank: E's, plus the mean over A's row and the mean over B's column. */
  private rankScores(layer: AdaLoraLayer): number[] {
    const { lora_A: A, lora_E: E, lora_B: B } = this.factors(layer);
    const [r, inF] = A.shape;
    const out = B.shape[0];
    const scores: number[] = [];
    for (let k = 0; k < r; k++) {
      let a = 0;
      for (let j = 0; j < inF; j++) a += this.score(A, k * inF + j);
      let b = 0;
      for (let i = 0; i < out; i++) b += this.score(B, i * r + k);
      scores.push(this.score(E, k) + (a / inF + b / out));
    }
    return scores;
  }

  /** Keeps the `budget` best ranks overall (ties at the threshold are all dropped). */
  private maskToBudget(budget: number): RankMasks {
    const perLayer = this.layers.map((l) => this.rankScores(l));
    const k = this.initBudget - budget;
    const sorted = perLayer.flat().sort((a, b) => a - b);
    const threshold = k > 0 ? sorted[k - 1] : Number.NEGATIVE_INFINITY;
    const pattern: RankMasks = {};
    this.layers.forEach((layer, i) => {
      pattern[maskKey(layer.path)] = perLayer[i].map((s) => !(s <= threshold));
    });
    this.applyMasks(pattern);
    return pattern;
  }

  /** Zeroes the singular value of every rank the pattern drops. */
  applyMasks(pattern: RankMasks): void {
    for (const layer of this.layers) {
      const keep = pattern[maskKey(layer.path)];
      if (keep === undefined) continue;
      const E = layer.factor("lora_E", this.adapter);
      const v = E.toFloat32Array();
      keep.forEach((kept, k) => {
        if (!kept) v[k] = 0;
      });
      overwrite(E.data, Tensor.from(v, E.shape, E.dtype).data);
    }
  }

  /** The smoothed scores as float64 tensors, "<module>.<factor>.ipt" and ".unc". */
  smoothedState(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const layer of this.layers)
      for (const [factor, p] of Object.entries(this.factors(layer))) {
        const s = this.smoothed.get(p);
        if (s === undefined) continue;
        out.set(`${layer.path}.${factor}.ipt`, Tensor.from(s.ipt, p.shape, "float64"));
        out.set(`${layer.path}.${factor}.unc`, Tensor.from(s.unc, p.shape, "float64"));
      }
    return out;
  }

  loadSmoothedState(tensors: ReadonlyMap<string, Tensor>): void {
    this.smoothed = new Map();
    for (const layer of this.layers)
      for (const [factor, p] of Object.entries(this.factors(layer))) {
        const ipt = tensors.get(`${layer.path}.${factor}.ipt`);
        const unc = tensors.get(`${layer.path}.${factor}.unc`);
        if (ipt === undefined || unc === undefined) continue;
        this.smoothed.set(p, {
          ipt: Float64Array.from(ipt.data as Float64Array),
          unc: Float64Array.from(unc.data as Float64Array),
        });
      }
  }

  /**
   * PEFT's update_and_allocate, after the optimizer step of `step` (0-based) and before
   * the gradients are cleared: scores and masks while the budget shrinks, fixes the final
   * pattern at totalStep - tfinal, and keeps applying it afterwards.
   */
  afterStep(step: number): void {
    const end = this.totalStep() - this.config.tfinal;
    if (step < end) {
      this.updateSensitivity();
      const { budget, mask } = this.budgetAt(step);
      if (mask) this.config.rankPattern = this.maskToBudget(budget);
    } else if (step === end) {
      this.config.rankPattern = this.maskToBudget(this.budgetAt(step).budget);
      this.smoothed = new Map();
    } else if (this.config.rankPattern !== null) {
      this.applyMasks(this.config.rankPattern);
    }
  }
}
