/**
 * Dynamic loss scaling with the semantics and defaults of PyTorch's
 * `torch.cuda.amp.GradScaler` (what Hugging Face's Trainer uses for
 * `fp16: true`): the loss is multiplied by `scale` before backward; a step
 * whose gradients hold inf/NaN is skipped and the scale multiplied by
 * `backoffFactor` (growth tracker reset); after `growthInterval` consecutive
 * good steps the scale is multiplied by `growthFactor`.
 *
 * The state (scale, growth tracker, skipped steps) is saved in every
 * checkpoint as `scaler.json`, so a resumed run scales exactly as an
 * uninterrupted one. Skipped steps do not advance the learning-rate schedule
 * (HF steps the scheduler only when the optimizer ran).
 *
 * @example
 * ```ts
 * import { LossScaler } from "./loss_scaler.ts";
 * const scaler = new LossScaler();
 * scaler.update(true); // overflow: skip the step
 * console.log(scaler.scale); // 32768
 * ```
 *
 * @module
 */

/** GradScaler's constructor options. */
export interface LossScalerOptions {
  /** Initial scale (default 2¹⁶ = 65536). */
  initScale?: number;
  /** Factor applied after `growthInterval` good steps (default 2). */
  growthFactor?: number;
  /** Factor applied on a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Good steps between growths (default 2000). */
  growthInterval?: number;
}

/** What a checkpoint stores (`scaler.json`). */
export interface LossScalerState {
  /** Current scale. */
  scale: number;
  /** Consecutive good steps since the last growth or overflow. */
  growth_tracker: number;
  /** Optimizer steps skipped so far (inf/NaN gradients). */
  skipped_steps: number;
}

/** File name of the scaler state in a checkpoint directory. */
export const SCALER_FILE = "scaler.json";

/** GradScaler's update rule, host side (the found-inf flag is read back once per step). */
export class LossScaler {
  /** Current scale. */
  scale: number;
  /** Consecutive good steps since the last growth or overflow. */
  growthTracker = 0;
  /** Optimizer steps skipped so far. */
  skippedSteps = 0;
  readonly #growthFactor: number;
  readonly #backoffFactor: number;
  readonly #growthInterval: number;

  /** Creates a scaler with GradScaler's defaults unless overridden. */
  constructor(options: LossScalerOptions = {}) {
    this.scale = options.initScale ?? 65536;
    this.#growthFactor = options.growthFactor ?? 2;
    this.#backoffFactor = options.backoffFactor ?? 0.5;
    this.#growthInterval = options.growthInterval ?? 2000;
  }

  /**
   * Records the outcome of one step: with `foundInf` the step was skipped
   * and the scale backs off, else the tracker counts toward growth.
   */
  update(foundInf: boolean): void {
    if (foundInf) {
      this.scale *= this.#backoffFactor;
      this.growthTracker = 0;
      this.skippedSteps++;
      return;
    }
    this.growthTracker++;
    if (this.growthTracker === this.#growthInterval) {
      // GradScaler keeps the old scale when growing would overflow f32.
      const grown = this.scale * this.#growthFactor;
      if (Number.isFinite(Math.fround(grown))) this.scale = grown;
      this.growthTracker = 0;
    }
  }

  /** The state to checkpoint. */
  state(): LossScalerState {
    return {
      scale: this.scale,
      growth_tracker: this.growthTracker,
      skipped_steps: this.skippedSteps,
    };
  }

  /** Restores a checkpointed state; `path` names the file in errors. */
  restore(state: unknown, path: string): void {
    const s = state as Partial<LossScalerState> | null;
    const ok = (v: unknown, positive: boolean) =>
      typeof v === "number" && Number.isFinite(v) && (positive ? v > 0 : v >= 0);
    if (!s || !ok(s.scale, true) || !ok(s.growth_tracker, false) || !ok(s.skipped_steps, false)) {
      throw new Error(
        `${path}: expected {"scale": > 0, "growth_tracker": ≥ 0, "skipped_steps": ≥ 0}, got ${
          JSON.stringify(state)
        }`,
      );
    }
    this.scale = s.scale!;
    this.growthTracker = s.growth_tracker!;
    this.skippedSteps = s.skipped_steps!;
  }
}
