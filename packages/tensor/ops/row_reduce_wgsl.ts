/**
 * WGSL workgroup reductions for one-workgroup-per-row kernels (256 threads).
 *
 * @module
 */

/** Threads per row workgroup. */
export const ROW_WG = 256;

/** Declares `wg_sum(v, lid)` and `wg_max(v, lid)`; call from uniform control flow. */
export const ROW_REDUCE = `
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
// Built from a runtime value: Naga does not constant-evaluate bitcast.
fn neg_inf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }
fn nan_f32() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }
`;

/** Row id from a 2-D workgroup grid. */
export const ROW_ID = "let row = w.x + w.y * nw.x;";

/** Builtins of a row kernel's entry point. */
export const ROW_ARGS =
  `@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>`;
