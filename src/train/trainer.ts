import type { FloatDType } from "../backend/dtype.js";
import { getBackend } from "../backend/registry.js";
import { PeftError, ValueError } from "../errors.js";
import { appendFileNoFollow } from "../io/atomic.js";
import { filesIn } from "../io/files/directory.js";
import { MemoryFiles, type ModelFiles } from "../io/files/model-files.js";
import { SafetensorsFile } from "../io/safetensors/reader.js";
import { adapterPath } from "../peft/adapter-files.js";
import { toSortedJson } from "../peft/config.js";
import type { PeftModel } from "../peft/peft-model.js";
import { readAdapterConfig } from "../peft/save-load.js";
import type { AdapterConfig } from "../peft/tuners/tuner.js";
import { defaultGenerator, type GeneratorState, manualSeed } from "../tensor/random.js";
import { autocast, noGrad } from "../tensor/state.js";
import type { Tensor } from "../tensor/tensor.js";
import { inDir, makeDir, writeCheckpoint } from "./checkpoint.js";
import {
  type CheckpointFiles,
  jsonBytes,
  momentsBytes,
  OPTIMIZER_FILE,
  readMoments,
  readState,
  STATE_FILE,
  safetensorsBytes,
  TUNER_FILE,
} from "./checkpoint-files.js";
import { clipGradNorm } from "./clip.js";
import { type Batch, collate, type Example, epochOrder } from "./data.js";
import { GradScaler, type GradScalerState } from "./grad-scaler.js";
import { AdamW } from "./optim/adamw.js";
import type { Optimizer } from "./optim/optimizer.js";
import { SGD } from "./optim/sgd.js";
import { lockOutputDir } from "./output-lock.js";
import { ProgressBar } from "./progress.js";
import { learningRateAt, type ScheduleName } from "./schedule.js";

/** A training run that had to stop: a non-finite loss or gradient, named with its step. */
export class TrainingError extends PeftError {
  constructor(message: string) {
    super("E_TRAINING", message);
  }
}

export interface TrainingArguments {
  /**
   * Where checkpoints and metrics.jsonl go, locked for this run. Null (the default) keeps
   * nothing on disk (as in browsers): no metrics file, and checkpoints (saveEvery) only
   * reach the onCheckpoint callback.
   */
  outputDir?: string | null;
  epochs?: number;
  /** Stop after this many optimizer steps (overrides epochs). */
  maxSteps?: number;
  batchSize?: number;
  gradientAccumulation?: number;
  lr?: number;
  schedule?: ScheduleName;
  warmupSteps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. Default 1. */
  maxGradNorm?: number;
  optimizer?: "adamw" | "sgd";
  momentum?: number;
  /** float32; bfloat16 (autocast); float16 (autocast and dynamic loss scaling). */
  precision?: "float32" | "bfloat16" | "float16";
  logEvery?: number;
  evalEvery?: number;
  saveEvery?: number;
  seed?: number;
  /** Console progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  /**
   * float16: consecutive steps skipped for overflowing gradients after which the run stops
   * (the loss scale has then shrunk 2^N times and the overflow is not the scale's). Default 25.
   */
  maxSkippedSteps?: number;
}

export interface StepMetrics {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  skipped: boolean;
}

export interface TrainerCallbacks {
  onStepEnd?(metrics: StepMetrics, trainer: Trainer): void;
  onLog?(metrics: StepMetrics, trainer: Trainer): void;
  onEvaluate?(metrics: { step: number; evalLoss: number }, trainer: Trainer): void;
  /** After a checkpoint was written into outputDir (saveEvery, saveCheckpoint). */
  onSave?(dir: string, trainer: Trainer): void;
  /**
   * Every checkpoint's files (saveEvery, saveCheckpoint), also where no outputDir is: keep
   * them (in browsers: IndexedDB, the origin's private file system) and pass them to
   * resumeFrom to go on from there.
   */
  onCheckpoint?(files: CheckpointFiles, trainer: Trainer): void;
}

interface TrainerState {
  step: number;
  epoch: number;
  batchInEpoch: number;
  rng: GeneratorState;
  scaler: GradScalerState | null;
  momentSteps: number[][];
  losses: number[];
  /** The method's run state (AdaLoRA's schedule and scores), with TUNER_FILE. */
  tuner?: unknown;
}

/**
 * Trains the active adapter of a PeftModel: shuffled batches per epoch, gradient
 * accumulation, clipping, a learning-rate schedule, AdamW or SGD, bf16 autocast or fp16
 * with loss scaling, evaluation, callbacks, a JSONL metrics log and atomic checkpoints
 * that resume to the same losses as an uninterrupted run.
 */
export class Trainer {
  readonly args: Required<Omit<TrainingArguments, "maxSteps">> & { maxSteps: number | undefined };
  readonly optimizer: Optimizer<{ lr: number }, unknown>;
  readonly params: Tensor[];
  readonly scaler: GradScaler | null;
  /** Losses of every optimizer step so far (accumulated micro-batches averaged). */
  losses: number[] = [];
  step = 0;
  private epoch = 0;
  private batchInEpoch = 0;

  constructor(
    readonly peft: PeftModel,
    args: TrainingArguments,
    readonly data: { train: Example[]; eval?: Example[] },
    readonly padTokenId: number,
    readonly callbacks: TrainerCallbacks = {},
  ) {
    this.args = {
      epochs: 1,
      maxSteps: undefined,
      batchSize: 4,
      gradientAccumulation: 1,
      lr: 2e-4,
      schedule: "linear",
      warmupSteps: 0,
      weightDecay: 0,
      maxGradNorm: 1,
      optimizer: "adamw",
      momentum: 0.9,
      precision: "float32",
      logEvery: 10,
      evalEvery: 0,
      saveEvery: 0,
      seed: 42,
      progress: Boolean(globalThis.process?.stderr?.isTTY),
      maxSkippedSteps: 25,
      ...args,
      outputDir: args.outputDir ?? null,
    };
    const a = this.args;
    if (data.train.length === 0) throw new ValueError("Trainer: the training set is empty");
    if (a.saveEvery > 0 && a.outputDir === null && callbacks.onCheckpoint === undefined)
      throw new ValueError(
        "Trainer: saveEvery needs an outputDir to write checkpoints into, or an onCheckpoint callback to hand them to",
      );
    for (const [k, v] of Object.entries({
      batchSize: a.batchSize,
      gradientAccumulation: a.gradientAccumulation,
      epochs: a.epochs,
    })) {
      if (!Number.isInteger(v) || v < 1)
        throw new ValueError(`Trainer: ${k} must be a positive integer, got ${v}`);
    }
    this.params = peft.model.parameters().filter((p) => p.requiresGrad);
    if (this.params.length === 0)
      throw new ValueError(
        "Trainer: the model has no trainable parameters (was the adapter loaded with isTrainable: false?)",
      );
    this.optimizer =
      a.optimizer === "sgd"
        ? (new SGD(this.params, {
            lr: a.lr,
            momentum: a.momentum,
            weightDecay: a.weightDecay,
          }) as unknown as Optimizer<{ lr: number }, unknown>)
        : (new AdamW(this.params, { lr: a.lr, weightDecay: a.weightDecay }) as unknown as Optimizer<
            { lr: number },
            unknown
          >);
    this.scaler = a.precision === "float16" ? new GradScaler() : null;
    // As transformers' Trainer does: the seed fixes dropout masks from here on.
    manualSeed(a.seed);
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.data.train.length / this.args.batchSize);
  }

  get totalSteps(): number {
    return (
      this.args.maxSteps ??
      this.args.epochs * Math.ceil(this.batchesPerEpoch / this.args.gradientAccumulation)
    );
  }

  /** Loss of one batch, computed in the configured precision. */
  private lossOf(batch: Batch): Tensor {
    const run = () =>
      this.peft.forward({
        inputIds: batch.inputIds,
        attentionMask: batch.attentionMask,
        labels: batch.labels,
      } as never) as { loss?: Tensor };
    const out =
      this.args.precision === "float32" ? run() : autocast(this.args.precision as FloatDType, run);
    if (out.loss === undefined) throw new ValueError("Trainer: the model returned no loss");
    return out.loss;
  }

  /** Mean loss over the evaluation set (no gradients, eval mode). */
  evaluate(): number {
    const examples = this.data.eval ?? [];
    if (examples.length === 0) return Number.NaN;
    const wasTraining = this.peft.model.training;
    this.peft.eval();
    let sum = 0;
    let count = 0;
    noGrad(() => {
      for (let i = 0; i < examples.length; i += this.args.batchSize) {
        const batch = collate(examples.slice(i, i + this.args.batchSize), this.padTokenId);
        sum += (this.lossOf(batch).item() as number) * batch.tokens;
        count += batch.tokens;
      }
    });
    this.peft.train(wasTraining);
    return sum / count;
  }

  train(): { steps: number; losses: number[] } {
    const a = this.args;
    const total = this.totalSteps;
    const bar = a.progress ? new ProgressBar(total) : null;
    if (bar !== null) concurrentMarkingHint();
    if (a.outputDir === null) return this.trainLocked(total, bar, () => {});
    makeDir(a.outputDir);
    const release = lockOutputDir(a.outputDir);
    const metricsFile = inDir(a.outputDir, "metrics.jsonl");
    try {
      return this.trainLocked(total, bar, (line) =>
        appendFileNoFollow(metricsFile, `${JSON.stringify(line)}\n`),
      );
    } finally {
      release();
    }
  }

  private trainLocked(
    total: number,
    bar: ProgressBar | null,
    record: (line: object) => void,
  ): { steps: number; losses: number[] } {
    const a = this.args;
    const hooks = this.peft.trainingHooks();
    hooks?.beforeTraining?.(total);
    this.peft.train();
    let tokens = 0;
    let t0 = Date.now();
    let skippedInARow = 0;
    outer: while (this.step < total) {
      const order = epochOrder(this.data.train.length, a.seed, this.epoch);
      const batches = Math.ceil(order.length / a.batchSize);
      while (this.batchInEpoch < batches) {
        // One optimizer step over `gradientAccumulation` micro-batches (fewer at an epoch's end).
        const micro = Math.min(a.gradientAccumulation, batches - this.batchInEpoch);
        let stepLoss = 0;
        for (let m = 0; m < micro; m++) {
          const start = (this.batchInEpoch + m) * a.batchSize;
          const batch = collate(
            order.slice(start, start + a.batchSize).map((i) => this.data.train[i]),
            this.padTokenId,
          );
          const loss = this.lossOf(batch);
          const value = loss.item() as number;
          if (!Number.isFinite(value) && this.scaler === null) {
            throw new TrainingError(
              `the loss became ${value} at step ${this.step + 1} (epoch ${this.epoch + 1}); lower the learning rate or check the data`,
            );
          }
          stepLoss += value / micro;
          tokens += batch.tokens;
          const scaled = loss.mul(1 / micro);
          (this.scaler ? this.scaler.scaleLoss(scaled) : scaled).backward();
        }
        this.batchInEpoch += micro;
        const ok = this.scaler === null ? true : this.scaler.unscale(this.params);
        const gradNorm =
          ok && a.maxGradNorm > 0 ? clipGradNorm(this.params, a.maxGradNorm) : Number.NaN;
        if (ok && a.maxGradNorm > 0 && !Number.isFinite(gradNorm)) {
          throw new TrainingError(
            `a gradient became non-finite at step ${this.step + 1}; lower the learning rate or use precision float32`,
          );
        }
        const lr = learningRateAt(this.step, {
          name: a.schedule,
          lr: a.lr,
          warmupSteps: a.warmupSteps,
          totalSteps: total,
        });
        if (ok) {
          this.optimizer.setLearningRate(lr);
          this.optimizer.step();
          hooks?.afterStep?.(this.step);
          this.scaler?.update();
          skippedInARow = 0;
        } else if (++skippedInARow >= a.maxSkippedSteps) {
          throw new TrainingError(
            `${skippedInARow} steps in a row were skipped at step ${this.step + 1} because the float16 gradients overflowed (last loss ${stepLoss}, loss scale now ${this.scaler?.scale}); lower the learning rate or use precision bfloat16 or float32`,
          );
        }
        this.optimizer.zeroGrad();
        this.step++;
        this.losses.push(stepLoss);
        const seconds = Math.max(1e-3, (Date.now() - t0) / 1000);
        const metrics: StepMetrics = {
          step: this.step,
          epoch: this.epoch + this.batchInEpoch / batches,
          loss: stepLoss,
          lr,
          gradNorm,
          tokensPerSecond: tokens / seconds,
          skipped: !ok,
        };
        this.callbacks.onStepEnd?.(metrics, this);
        const logNow = this.step % a.logEvery === 0 || this.step === total;
        bar?.update(this.step, metrics, logNow);
        if (logNow) {
          record(metrics);
          this.callbacks.onLog?.(metrics, this);
          tokens = 0;
          t0 = Date.now();
        }
        if (a.evalEvery > 0 && this.step % a.evalEvery === 0 && this.data.eval) {
          const evalLoss = this.evaluate();
          record({ step: this.step, evalLoss });
          this.callbacks.onEvaluate?.({ step: this.step, evalLoss }, this);
        }
        if (a.saveEvery > 0 && this.step % a.saveEvery === 0) this.checkpoint();
        if (this.step >= total) break outer;
      }
      this.epoch++;
      this.batchInEpoch = 0;
    }
    bar?.end();
    this.checkFinite();
    return { steps: this.step, losses: this.losses };
  }

  /**
   * Writes a checkpoint (adapter, optimizer state, RNG state and position) into outputDir
   * atomically, and hands its files to onCheckpoint; returns the directory.
   */
  saveCheckpoint(): string {
    const outputDir = this.args.outputDir;
    if (outputDir === null)
      throw new ValueError(
        "saveCheckpoint: this Trainer has no outputDir to write into; take the files with checkpointFiles()",
      );
    const files = this.checkpointFiles();
    const dir = writeCheckpoint(outputDir, this.step, files);
    this.callbacks.onSave?.(dir, this);
    this.callbacks.onCheckpoint?.(files, this);
    return dir;
  }

  /** A periodic checkpoint: into outputDir, or only to onCheckpoint without one. */
  private checkpoint(): void {
    if (this.args.outputDir !== null) this.saveCheckpoint();
    else this.callbacks.onCheckpoint?.(this.checkpointFiles(), this);
  }

  /**
   * Everything a checkpoint holds, as files in memory, byte for byte what saveCheckpoint
   * writes; resumeFrom takes them back.
   */
  checkpointFiles(): CheckpointFiles {
    this.checkFinite();
    const files = this.peft.savePretrained({ selectedAdapters: [this.peft.activeAdapter] });
    const moments = momentsBytes(this.optimizer.stateDict());
    files[OPTIMIZER_FILE] = moments.bytes;
    const state: TrainerState = {
      step: this.step,
      epoch: this.epoch,
      batchInEpoch: this.batchInEpoch,
      rng: defaultGenerator.getState(),
      scaler: this.scaler?.state() ?? null,
      momentSteps: moments.steps,
      losses: this.losses,
    };
    const run = this.peft.trainingHooks()?.runState?.();
    if (run !== undefined) {
      state.tuner = run.json;
      files[TUNER_FILE] = safetensorsBytes(run.tensors);
    }
    files[STATE_FILE] = jsonBytes(state);
    return files;
  }

  /** A run never hands on (or saves) an adapter with NaN or infinite values. */
  private checkFinite(): void {
    for (const [name, t] of this.peft.model.namedParameters()) {
      if (!t.requiresGrad) continue;
      const bad = t.toFloat32Array().filter((v) => !Number.isFinite(v)).length;
      if (bad > 0)
        throw new TrainingError(
          `after step ${this.step}, ${name} holds ${bad} non-finite value(s); nothing was saved. Lower the learning rate, use another precision, or check the base model's weights`,
        );
    }
  }

  /**
   * A checkpoint of another adapter (another method, rank or targets) cannot continue this
   * run: its tensors would not fit, or would fit and mean something else.
   */
  private checkSameAdapter(where: string, saved: AdapterConfig, runKeys: readonly string[]): void {
    const current = this.peft.peftConfig.get(this.peft.activeAdapter)!;
    const ignored = new Set(["base_model_name_or_path", "revision", "inference_mode", ...runKeys]);
    const a = saved.toJson();
    const b = current.toJson();
    const differ = [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .filter((k) => !ignored.has(k) && toSortedJson({ v: a[k] }) !== toSortedJson({ v: b[k] }))
      .sort();
    if (differ.length === 0) return;
    const describe = (c: Record<string, unknown>) =>
      `${c.peft_type}${c.use_dora ? " (DoRA)" : ""}, r ${c.r}`;
    throw new ValueError(
      `resume: ${where} holds a ${describe(a)} adapter, but this run trains ${describe(b)}; they differ in ${differ
        .map((k) => `${k} (${JSON.stringify(a[k])} there, ${JSON.stringify(b[k])} here)`)
        .join(
          ", ",
        )}. Resume with the checkpoint's settings, or train into another output directory`,
    );
  }

  /**
   * Restores a checkpoint, from the directory saveCheckpoint wrote or from the files
   * checkpointFiles (or onCheckpoint) gave; training then continues where it stopped, to
   * the same losses as a run that never stopped.
   */
  resumeFrom(checkpoint: string | CheckpointFiles): void {
    const folder = (sub: string): ModelFiles =>
      typeof checkpoint === "string"
        ? filesIn(sub === "" ? checkpoint : inDir(checkpoint, sub))
        : MemoryFiles.inFolder(checkpoint, sub, { location: "<checkpoint in memory>" });
    const top = folder("");
    const state = readState(top) as TrainerState;
    const name = this.peft.activeAdapter;
    const adapter = folder(adapterPath(name));
    const hooks = this.peft.trainingHooks();
    this.checkSameAdapter(
      top.location,
      readAdapterConfig(adapter, () => {}),
      hooks?.runConfigKeys ?? [],
    );
    const run = state.tuner !== undefined ? SafetensorsFile.openIn(top, TUNER_FILE) : null;
    const runTensors = run?.loadAll() ?? new Map<string, Tensor>();
    run?.close();
    const weights = new Map<string, Tensor>();
    for (const [k, t] of runTensors)
      if (k.startsWith("weights/")) weights.set(k.slice("weights/".length), t);
    // Values are copied into the existing tensors, so the optimizer keeps its references.
    this.peft.loadWeightsInto(name, adapter, weights);
    if (run !== null) hooks?.loadRunState?.(state.tuner, runTensors);
    this.optimizer.loadStateDict(readMoments(top, state.momentSteps));
    defaultGenerator.setState(state.rng);
    if (state.scaler && this.scaler) this.scaler.load(state.scaler);
    this.step = state.step;
    this.epoch = state.epoch;
    this.batchInEpoch = state.batchInEpoch;
    this.losses = state.losses;
  }
}

let hinted = false;

/**
 * Once per process: on the native backend, V8's concurrent marking takes cores from the
 * kernels' threads (15-22% of a step on 2 cores), and only node's command line can turn
 * it off.
 */
function concurrentMarkingHint(): void {
  if (hinted || getBackend().name !== "native") return;
  if (process.execArgv.includes("--no-concurrent-marking")) return;
  hinted = true;
  process.stderr.write(
    "peft-ts: run node with --no-concurrent-marking for faster steps on the native backend (README, Backends)\n",
  );
}
