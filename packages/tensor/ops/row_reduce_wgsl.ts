/**
 * WGSL workgroup reductions for one-workgroup-per-row kernels (256 threads),
 * in two flavours chosen by a kernel spec field `subgroups`:
 *
 * - workgroup memory only (every adapter): a tree over 256 slots, 9 barriers;
 * - subgroups (`subgroups` feature with the `subgroup_id` builtin, e.g. Dawn):
 *   `subgroupAdd`/`subgroupMax` inside each subgroup, one partial per
 *   subgroup in workgroup memory, 2 barriers.
 *
 * Both declare `wg_sum(v, lid)` and `wg_max(v, lid)`, to be called from
 * workgroup-uniform control flow; a kernel takes {@link rowArgs} /
 * {@link subgroupArgs} in its entry point and runs {@link rowId} /
 * {@link subgroupInit} first.
 *
 * @example A row kernel that works on both paths
 * ```ts ignore
 * const source = (s: { subgroups: boolean }) => `
 * ${rowReduce(s.subgroups)}
 * @compute @workgroup_size(${ROW_WG})
 * fn main(${rowArgs(s.subgroups)}) {
 *   ${rowId(s.subgroups)}
 *   let total = wg_sum(X[row * ${ROW_WG}u + l.x], l.x);
 * }`;
 * ```
 *
 * @module
 */

import { currentDevice } from "../device.ts";

/** Threads per row workgroup. */
export const ROW_WG = 256;

let subgroupOverride: boolean | undefined;

/**
 * Whether row reductions use subgroups on the current device: when it has
 * them (`Device.subgroups`), unless {@link setRowSubgroupsForTesting} says no.
 */
export function rowSubgroups(): boolean {
  const available = currentDevice().subgroups;
  return available && (subgroupOverride ?? true);
}

/**
 * Forces the workgroup-memory path (`false`) or restores the default
 * (`undefined`), so tests cover both paths on a device with subgroups.
 * `true` cannot switch subgroups on where the device has none.
 */
export function setRowSubgroupsForTesting(on: boolean | undefined): void {
  subgroupOverride = on;
}

const HELPERS = `
// Built from a runtime value: Naga does not constant-evaluate bitcast.
fn neg_inf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }
fn nan_f32() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }
`;

const WORKGROUP_REDUCE = `
var<workgroup> red: array<f32, ${ROW_WG}>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

// One partial per subgroup, indexed by the subgroup_id builtin (no assumption
// about how invocations map to subgroups); every invocation then folds the
// partials in the same order, so all get the identical result.
const SUBGROUP_REDUCE = `
var<workgroup> red: array<f32, ${ROW_WG}>;
var<private> sg_id: u32;
var<private> sg_count: u32;
fn sg_init(id: u32, count: u32) { sg_id = id; sg_count = count; }
fn wg_sum(v: f32, lid: u32) -> f32 {
  let s = subgroupAdd(v);
  if (subgroupElect()) { red[sg_id] = s; }
  workgroupBarrier();
  var r = red[0];
  for (var i = 1u; i < ${ROW_WG}u; i++) { if (i >= sg_count) { break; } r += red[i]; }
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, lid: u32) -> f32 {
  let s = subgroupMax(v);
  if (subgroupElect()) { red[sg_id] = s; }
  workgroupBarrier();
  var r = red[0];
  for (var i = 1u; i < ${ROW_WG}u; i++) { if (i >= sg_count) { break; } r = max(r, red[i]); }
  workgroupBarrier();
  return r;
}
`;

/** Declares `wg_sum(v, lid)`, `wg_max(v, lid)`, `neg_inf()`, `nan_f32()`. */
export function rowReduce(subgroups: boolean): string {
  return (subgroups ? SUBGROUP_REDUCE : WORKGROUP_REDUCE) + HELPERS;
}

/** Entry-point builtins the subgroup path needs (prefixed with a comma), or nothing. */
export function subgroupArgs(subgroups: boolean): string {
  return subgroups ? ", @builtin(subgroup_id) sgid: u32, @builtin(num_subgroups) nsg: u32" : "";
}

/** First statement of an entry point using the reductions. */
export function subgroupInit(subgroups: boolean): string {
  return subgroups ? "sg_init(sgid, nsg);" : "";
}

/** Builtins of a row kernel's entry point (`w`, `nw`, `l`, plus the subgroup ones). */
export function rowArgs(subgroups: boolean): string {
  return `${ROW_ARGS}${subgroupArgs(subgroups)}`;
}

/** Row id from a 2-D workgroup grid, after the subgroup set-up. */
export function rowId(subgroups: boolean): string {
  return `${subgroupInit(subgroups)} ${ROW_ID}`;
}

/** The workgroup-memory reductions (for kernels without a `subgroups` spec). */
export const ROW_REDUCE: string = rowReduce(false);

/** Row id from a 2-D workgroup grid. */
export const ROW_ID = "let row = w.x + w.y * nw.x;";

/** Builtins of a row kernel's entry point (workgroup-memory path). */
export const ROW_ARGS =
  `@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>`;
