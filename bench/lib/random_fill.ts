/**
 * Random weights made on the GPU: a PCG hash of (seed, index) mapped to a
 * uniform value in [−bound, bound), written as f32 or f16. A 7B-shaped model
 * is filled in seconds this way, without host arrays or an f32 copy of an
 * f16 weight. {@link uniformHashArray} is the CPU reference of the kernel.
 *
 * @module
 */

import { getRuntime, Tensor } from "@irforge/tensor";

const WORKGROUP = 256;

function kernel(dtype: "f32" | "f16"): string {
  return `${dtype === "f16" ? "enable f16;\n" : ""}
struct Params { v: array<vec4<u32>, 16> }
@group(0) @binding(1) var<uniform> P: Params;
fn pu(i: u32) -> u32 { return P.v[i >> 2u][i & 3u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
@group(0) @binding(0) var<storage, read_write> OUT: array<${dtype}>;
fn pcg(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = pu(0u); let seedHash = pu(1u); let bound = pf(2u);
  let i = g.x + g.y * nw.x * ${WORKGROUP}u;
  if (i >= n) { return; }
  // 24 random bits → [0, 1): exact in f32.
  let u = f32(pcg(i ^ seedHash) >> 8u) * (1.0 / 16777216.0);
  OUT[i] = ${dtype}((2.0 * u - 1.0) * bound);
}`;
}

/** PCG-RXS-M-XS 32-bit hash (the same as the kernel's and the dropout op's). */
export function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** CPU reference: the `n` values {@link fillUniform} writes for `seed` and `bound` (before f16 rounding). */
export function uniformHashArray(n: number, seed: number, bound: number): Float64Array {
  const out = new Float64Array(n);
  const seedHash = pcgHash(seed);
  const b = Math.fround(bound);
  for (let i = 0; i < n; i++) {
    const u = (pcgHash((i ^ seedHash) >>> 0) >>> 8) / 16777216;
    out[i] = Math.fround(Math.fround(2 * u - 1) * b);
  }
  return out;
}

/**
 * Fills `t` (f32 or f16) with uniform values in [−bound, bound) from `seed`;
 * returns `t`. Recorded on the runtime's encoder like any op.
 */
export function fillUniform(t: Tensor, seed: number, bound: number): Tensor {
  if (t.dtype !== "f32" && t.dtype !== "f16") {
    throw new Error(`fillUniform: ${t} must be f32 or f16`);
  }
  if (t.size >= 2 ** 32) throw new Error(`fillUniform: ${t} has too many elements for u32 indices`);
  const rt = getRuntime();
  const groups = Math.ceil(t.size / WORKGROUP);
  const max = rt.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(groups, max), y = Math.ceil(groups / x);
  const params = new DataView(new ArrayBuffer(256));
  params.setUint32(0, t.size, true);
  params.setUint32(4, pcgHash(seed), true);
  params.setFloat32(8, bound, true);
  rt.dispatch({
    op: `fill_uniform_${t.dtype}`,
    code: kernel(t.dtype),
    buffers: [t.buffer],
    params: params.buffer,
    workgroups: [x, y],
  });
  return t;
}

/** A new tensor of `shape` filled by {@link fillUniform}; the caller owns it. */
export function uniformTensor(
  shape: readonly number[],
  dtype: "f32" | "f16",
  seed: number,
  bound: number,
): Tensor {
  return fillUniform(Tensor.empty(shape, dtype, "random weight"), seed, bound);
}
