/**
 * The end of a training step: global-norm clipping and loss-scale
 * unscaling folded into AdamW's read of each gradient, and, in mixed
 * precision, GradScaler's skip of a step whose gradients hold inf/NaN (the
 * found-inf flag is read back, as `GradScaler.step` does).
 *
 * @module
 */

import type { AdamW, Tensor } from "@irforge/tensor";
import { gradNormStats } from "@irforge/tensor";
import type { LossScaler } from "./loss_scaler.ts";

/** What {@link optimizerStep} did. */
export interface OptimizerStepResult {
  /** Global norm of the unscaled gradients before clipping (NaN on overflow); the caller owns it. */
  gradNorm: Tensor;
  /** Whether the update was skipped (inf/NaN gradients under loss scaling). */
  skipped: boolean;
  /** The loss scale the gradients were computed with (1 without scaling). */
  lossScale: number;
}

/**
 * Clips (`maxGradNorm` ≤ 0: off), unscales and applies AdamW with `lr`;
 * with a `scaler`, skips the update on inf/NaN gradients and updates the
 * scale. Gradients are left for the caller to zero.
 */
export async function optimizerStep(
  params: readonly Tensor[],
  optimizer: AdamW,
  options: { lr: number; maxGradNorm: number; scaler: LossScaler | null },
): Promise<OptimizerStepResult> {
  const { scaler } = options;
  const lossScale = scaler?.scale ?? 1;
  const { norm, factor } = gradNormStats(
    params,
    options.maxGradNorm > 0 ? options.maxGradNorm : Infinity,
    { lossScale },
  );
  try {
    if (scaler) {
      const foundInf = (await factor.toArray())[1] !== 0;
      scaler.update(foundInf);
      if (foundInf) return { gradNorm: norm, skipped: true, lossScale };
    }
    optimizer.step(options.lr, { gradFactor: factor });
    return { gradNorm: norm, skipped: false, lossScale };
  } finally {
    factor.dispose();
  }
}
