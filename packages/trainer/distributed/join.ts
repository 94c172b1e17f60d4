/**
 * A training process's side of a data-parallel job: join it, and end it so
 * that no rank is left waiting.
 *
 * @module
 */

import { DivergenceError, type TrainResult } from "../loop.ts";
import { DataParallel } from "./data_parallel.ts";
import { Mpi } from "./mpi.ts";

/**
 * Initialises MPI and returns this rank's {@link DataParallel};
 * `timeoutSeconds` bounds every collective (`training.ddp_timeout`).
 */
export function joinDataParallel(timeoutSeconds: number): DataParallel {
  return new DataParallel(Mpi.init({ timeoutSeconds }));
}

/**
 * Whether every rank already knows how `result` ended: finished or
 * interrupted runs, and divergence (seen in the averaged loss by all
 * ranks). Any other failure is this rank's alone, and the others wait for
 * it in a collective.
 */
export function endedTogether(result: TrainResult): boolean {
  return result.status !== "failed" || result.error instanceof DivergenceError;
}

/**
 * Ends this rank after training: when the others cannot know that it
 * failed, ends the job with its error ({@link DataParallel.fail}: rank 0
 * records it, the launcher stops every rank); otherwise finalizes MPI.
 */
export async function leaveDataParallel(dp: DataParallel, result: TrainResult): Promise<void> {
  if (!endedTogether(result)) await dp.fail(result.error ?? new Error("training failed"));
  await dp.close();
  Mpi.finalizeIfInitialized();
}

/** Ends the job from this rank with `error` (an exception outside the training loop). */
export function abortDataParallel(dp: DataParallel, error: unknown): Promise<never> {
  return dp.fail(error);
}
