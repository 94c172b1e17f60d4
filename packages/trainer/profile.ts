/**
 * `training.profile_steps: N`: optimizer step N of a run (every micro-batch,
 * clipping and the update) is recorded with a GPU timestamp around every
 * dispatch; the per-op profile is printed and written once to the run
 * directory as `profile.json`, which the dashboard draws as a bar chart.
 * The timestamp slots are sized from the previous step's dispatch count.
 *
 * @module
 */

import { join } from "node:path";
import {
  formatOpProfile,
  NoTimestampsError,
  type OpProfile,
  type OpProfileSession,
  startOpProfile,
} from "@irforge/tensor";

/** File name of the profile in the run directory. */
export const PROFILE_FILE = "profile.json";

/** What `profile.json` holds. */
export interface RunProfile extends OpProfile {
  /** The optimizer step profiled (1-based). */
  step: number;
  /** ISO time it was written. */
  time: string;
}

/**
 * Starts profiling when `step` (1-based, the step about to run) is the one
 * asked for; `dispatchesPerStep` sizes the timestamp slots (0: unknown).
 * Returns `null` when not this step, or (with one logged sentence) when the
 * adapter cannot time dispatches.
 */
export function maybeStartProfile(
  wanted: number | null,
  step: number,
  dispatchesPerStep: number,
  log: (line: string) => void,
): OpProfileSession | null {
  if (wanted !== step) return null;
  try {
    // Query sets are created as dispatches reach them: a generous bound costs nothing unused.
    const maxDispatches = dispatchesPerStep > 0 ? Math.ceil(dispatchesPerStep * 1.25) + 256 : 65536;
    return startOpProfile({ maxDispatches });
  } catch (error) {
    if (!(error instanceof NoTimestampsError)) throw error;
    log(`profile_steps: step ${step} not profiled: ${error.message}`);
    return null;
  }
}

/** Stops `session`, prints the table and writes `profile.json` into `runPath`. */
export async function finishProfile(
  session: OpProfileSession,
  step: number,
  runPath: string | null,
  log: (line: string) => void,
): Promise<RunProfile> {
  const profile: RunProfile = {
    step,
    time: new Date().toISOString(),
    ...(await session.stop()),
  };
  log(`\nGPU time per op over step ${step} (${profile.dispatches} dispatches):`);
  log(formatOpProfile(profile, 25));
  if (runPath === null) return profile; // a data-parallel follower: rank 0 writes the run
  const path = join(runPath, PROFILE_FILE);
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify(profile, null, 2) + "\n");
  await Deno.rename(tmp, path);
  return profile;
}
