/**
 * `--profile` of the step benchmarks: one warm step counted (its dispatches
 * size the timestamp slots), then one step recorded with a GPU timestamp
 * around every dispatch and printed as a per-op table (see
 * `@irforge/tensor`'s `profileOps`). On CPU adapters the shares are
 * meaningless; the table still shows what a step dispatches.
 *
 * @module
 */

import {
  formatOpProfile,
  type OpProfile,
  profileOps,
  runtimeCounters,
  syncGpu,
  type Tensor,
} from "@irforge/tensor";

/** Profiles one call of `step` (which returns its loss) after counting a warm one. */
export async function profileStep(name: string, step: () => Tensor): Promise<OpProfile> {
  await syncGpu();
  const before = runtimeCounters().dispatches;
  step().dispose();
  const perStep = runtimeCounters().dispatches - before;
  await syncGpu();
  let loss: Tensor | undefined;
  const profile = await profileOps(() => {
    loss = step();
  }, { maxDispatches: perStep + 64 });
  loss?.dispose();
  console.log(
    `\n${name}: per-op GPU time of one step (${profile.dispatches} dispatches, ${
      profile.totalMs.toFixed(2)
    } ms summed over dispatches)`,
  );
  console.log(formatOpProfile(profile));
  return profile;
}
