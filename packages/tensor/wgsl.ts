/**
 * WGSL snippets shared by the kernels.
 *
 * @module
 */

/**
 * Declares the uniform params block at `binding` and accessors
 * `pu(i)` (u32 word i), `pi(i)` (i32) and `pf(i)` (f32).
 */
export function paramsBlock(binding: number): string {
  return `
struct Params { v: array<vec4<u32>, 16> }
@group(0) @binding(${binding}) var<uniform> P: Params;
fn pu(i: u32) -> u32 { return P.v[i >> 2u][i & 3u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
`;
}

/** `enable f16;` when any of the dtypes is f16. */
export function enables(...dtypes: string[]): string {
  return dtypes.includes("f16") ? "enable f16;\n" : "";
}
