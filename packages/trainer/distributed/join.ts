/**
 * A training process's side of a data-parallel job: join it, and end it so
 * that no rank is left waiting.
 *
 * @module
 */

import { DivergenceError, type TrainResult } from "../loop.ts";
import { DataParallel, RankFailedError } from "./data_parallel.ts";
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
 * interrupted runs, failures shared at a step ({@link RankFailedError}) and
 * divergence (seen in the averaged loss by all ranks). Any other failure is
 * this rank's alone, and the others wait for it in a collective.
 */
export function endedTogether(result: TrainResult): boolean {
  return result.status !== "failed" || result.error instanceof RankFailedError ||
    result.error instanceof DivergenceError;
}

/**
 * Ends this rank after training: when the others cannot know that it
 * failed, aborts the job with its error (the launcher stops every rank);
 * otherwise finalizes MPI.
 */
export function leaveDataParallel(dp: DataParallel, result: TrainResult): void {
  if (!endedTogether(result)) dp.comm.abort(`training failed: ${result.error?.message}`);
  Mpi.finalizeIfInitialized();
}

/** Aborts the job from this rank with `error` (an exception outside the training loop). */
export function abortDataParallel(dp: DataParallel, error: unknown): never {
  const message = error instanceof Error ? error.stack ?? error.message : String(error);
  return dp.comm.abort(message);
}
