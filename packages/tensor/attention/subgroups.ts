/**
 * Subgroup reductions inside the attention kernels. A kernel that reduces
 * across a small group of invocations (the threads sharing a row in the
 * forward's online softmax, the lanes sharing a row in the row-stats and
 * row-score kernels) does it with `subgroupShuffleXor` butterflies instead
 * of a round trip through workgroup memory and a barrier, when the device
 * has subgroups (`Device.subgroups`, honouring `setRowSubgroupsForTesting`)
 * and the group fits a subgroup.
 *
 * WGSL does not say how local invocation indices map to subgroup lanes, so
 * the subgroup variant numbers its invocations itself:
 * `subgroup_id · subgroup_size + subgroup_invocation_id`. That is a
 * permutation of the workgroup when every subgroup is full, which is why the
 * path requires the workgroup size to be a multiple of the largest subgroup
 * size; a group of `lanes` consecutive numbers (a power of two no larger than
 * the smallest subgroup size) is then one subgroup's lanes differing only in
 * their low bits, which is what the butterfly exchanges.
 *
 * The butterfly gives every lane of the group a bit-identical result (each
 * step adds or maxes two values that the partner lane combines in the other
 * order, and both operations are commutative).
 *
 * @example
 * ```ts ignore
 * const sg = attentionSubgroups(64, 4);
 * const wgsl = `fn main(${invocationArgs(sg)}) { ${invocationIndex(sg)} … ${butterfly("sum", "x", 4)} }`;
 * ```
 *
 * @module
 */

import { currentDevice } from "../device.ts";
import { rowSubgroups } from "../ops/row_reduce_wgsl.ts";

/**
 * Whether a kernel of `threads` invocations may reduce over groups of
 * `lanes` consecutive invocations with subgroup operations on the current
 * device.
 */
export function attentionSubgroups(threads: number, lanes: number): boolean {
  if (!rowSubgroups()) return false;
  const device = currentDevice();
  const min = device.subgroupMinSize, max = device.subgroupMaxSize;
  if (min < 1 || max < 1) return false;
  const powerOfTwo = lanes >= 1 && (lanes & (lanes - 1)) === 0;
  return powerOfTwo && lanes <= min && threads % max === 0;
}

/**
 * Lanes per row of the flat row kernels (row stats, row scores): 8, or the
 * smallest subgroup size when smaller, on the subgroup path; 1 (one
 * invocation per row, no exchange) otherwise.
 */
export function flatRowLanes(): number {
  const lanes = Math.min(8, Math.max(1, currentDevice().subgroupMinSize));
  return attentionSubgroups(64, lanes) ? lanes : 1;
}

/** The entry point's invocation builtins: the local index, or the three subgroup ones. */
export function invocationArgs(subgroups: boolean): string {
  return subgroups
    ? "@builtin(subgroup_invocation_id) sgLane: u32, @builtin(subgroup_size) sgSize: u32, " +
      "@builtin(subgroup_id) sgId: u32"
    : "@builtin(local_invocation_index) li: u32";
}

/** Declares `li`, the invocation's number (see the module docs for the subgroup variant). */
export function invocationIndex(subgroups: boolean): string {
  return subgroups ? "let li = sgId * sgSize + sgLane;" : "";
}

/**
 * Statements that fold `variable` (an f32 `var`) over the `lanes` lanes of
 * its group with `subgroupShuffleXor`; to be run in uniform control flow.
 */
export function butterfly(op: "sum" | "max", variable: string, lanes: number): string {
  const steps: string[] = [];
  for (let mask = 1; mask < lanes; mask *= 2) {
    const other = `subgroupShuffleXor(${variable}, ${mask}u)`;
    steps.push(
      op === "sum"
        ? `${variable} = ${variable} + ${other};`
        : `${variable} = max(${variable}, ${other});`,
    );
  }
  return steps.join(" ");
}
