import { ValueError } from "../errors.js";

export type ScheduleName = "constant" | "linear" | "cosine";

export interface ScheduleOptions {
  name: ScheduleName;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
}

/**
 * The learning rate for optimizer step `step` (0-based), as transformers' schedules:
 * linear warm-up from 0 over warmupSteps, then constant, linear decay to 0, or a half
 * cosine to 0 at totalSteps.
 */
export function learningRateAt(step: number, o: ScheduleOptions): number {
  if (!["constant", "linear", "cosine"].includes(o.name)) {
    throw new ValueError(
      `unknown learning-rate schedule "${o.name}": expected constant, linear or cosine`,
    );
  }
  if (step < o.warmupSteps) return (o.lr * step) / Math.max(1, o.warmupSteps);
  if (o.name === "constant") return o.lr;
  const progress = (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps);
  if (o.name === "linear") return o.lr * Math.max(0, 1 - progress);
  return o.lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
