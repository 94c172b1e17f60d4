/**
 * Random weights made on the GPU: a PCG hash of (seed, index) mapped to a
 * uniform value in [−bound, bound), written as f32 or f16. A 7B-shaped model
 * is filled in seconds this way, without host arrays or an f32 copy of an
 * f16 weight. {@link uniformHashArray} is the CPU reference of the kernel.
 *
 * @module
 */

import { currentDevice, defineKernel, launch, Tensor } from "@irforge/tensor";

const WORKGROUP = 256;

const FILL_UNIFORM = defineKernel({
  name: "fill_uniform",
  key: ({ dtype }: { dtype: "f32" | "f16" }) => dtype,
  uniforms: { n: "u32", seedHash: "u32", bound: "f32" },
  bindings: ({ dtype }) => ({ OUT: { type: `array<${dtype}>`, access: "read_write" as const } }),
  source: ({ dtype }) => `
fn pcg(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let seedHash = P.seedHash; let bound = P.bound;
  let i = g.x + g.y * nw.x * ${WORKGROUP}u;
  if (i >= n) { return; }
  // 24 random bits → [0, 1): exact in f32.
  let u = f32(pcg(i ^ seedHash) >> 8u) * (1.0 / 16777216.0);
  OUT[i] = ${dtype}((2.0 * u - 1.0) * bound);
}`,
});

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
  const groups = Math.ceil(t.size / WORKGROUP);
  const max = currentDevice().limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(groups, max), y = Math.ceil(groups / x);
  launch(
    FILL_UNIFORM,
    { dtype: t.dtype },
    { OUT: t.buffer },
    { n: t.size, seedHash: pcgHash(seed), bound },
    [x, y],
  );
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
