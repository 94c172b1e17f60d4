/**
 * Global gradient-norm clipping on the GPU: the L2 norm over all gradients
 * is reduced on the GPU and every gradient is scaled by
 * `min(1, maxNorm / (norm + 1e-6))` without reading anything back.
 *
 * @module
 */

import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import {
  ROW_WG,
  rowReduce,
  rowSubgroups,
  subgroupArgs,
  subgroupInit,
} from "../ops/row_reduce_wgsl.ts";

const MAX_SLOTS = 64;

const PARTIAL = defineKernel({
  name: "clip-partial",
  key: ({ subgroups }: { subgroups: boolean }) => (subgroups ? "subgroups" : "workgroup"),
  uniforms: { n: "u32", slot: "u32" },
  bindings: () => ({
    PART: { type: "array<f32>", access: "read_write" },
    G: { type: "array<f32>" },
  }),
  source: ({ subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>${subgroupArgs(subgroups)}) {
  ${subgroupInit(subgroups)}
  let n = P.n; let slot = P.slot;
  var s = 0.0;
  for (var i = w.x * ${ROW_WG}u + l.x; i < n; i += nw.x * ${ROW_WG}u) { let g = G[i]; s += g * g; }
  s = wg_sum(s, l.x);
  if (l.x == 0u) { PART[slot + w.x] = s; }
}`,
});

const TOTAL = defineKernel({
  name: "clip-total",
  key: ({ subgroups }: { subgroups: boolean }) => (subgroups ? "subgroups" : "workgroup"),
  uniforms: { n: "u32", maxNorm: "f32" },
  bindings: () => ({
    NORM: { type: "array<f32>", access: "read_write" },
    FACTOR: { type: "array<f32>", access: "read_write" },
    PART: { type: "array<f32>" },
  }),
  source: ({ subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) l: vec3<u32>${subgroupArgs(subgroups)}) {
  ${subgroupInit(subgroups)}
  let n = P.n; let maxNorm = P.maxNorm;
  var s = 0.0;
  for (var i = l.x; i < n; i += ${ROW_WG}u) { s += PART[i]; }
  s = wg_sum(s, l.x);
  if (l.x == 0u) {
    let norm = sqrt(s);
    NORM[0] = norm;
    FACTOR[0] = min(1.0, maxNorm / (norm + 1e-6));
  }
}`,
});

const SCALE = defineKernel({
  name: "clip-scale",
  key: () => "",
  uniforms: { n: "u32" },
  bindings: () => ({
    G: { type: "array<f32>", access: "read_write" },
    FACTOR: { type: "array<f32>" },
  }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 256u;
  if (i < P.n) { G[i] = G[i] * FACTOR[0]; }
}`,
});

/**
 * Clips the gradients of `params` (those with `.grad`, f32) in place to a
 * global L2 norm of at most `maxNorm`; returns the pre-clip norm as a
 * one-element f32 tensor (the caller owns it; reading it is optional).
 * `maxNorm = Infinity` only measures.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  const rt = getRuntime();
  const subgroups = rowSubgroups();
  const slots = grads.map((g) =>
    Math.max(1, Math.min(MAX_SLOTS, Math.ceil(g.size / (ROW_WG * 16))))
  );
  const totalSlots = Math.max(1, slots.reduce((a, b) => a + b, 0));
  const part = Tensor.empty([totalSlots], "f32");
  const norm = Tensor.empty([1], "f32");
  const factor = Tensor.empty([1], "f32");
  let at = 0;
  grads.forEach((g, i) => {
    if (g.dtype !== "f32") throw new Error(`clipGradNorm: gradient ${g} must be f32`);
    rt.launch(PARTIAL, { subgroups }, { PART: part.buffer, G: g.buffer }, { n: g.size, slot: at }, [
      slots[i]!,
    ]);
    at += slots[i]!;
  });
  if (grads.length === 0) {
    part.write(new Float32Array(1));
  }
  rt.launch(
    TOTAL,
    { subgroups },
    { NORM: norm.buffer, FACTOR: factor.buffer, PART: part.buffer },
    { n: totalSlots, maxNorm },
    [1],
  );
  if (Number.isFinite(maxNorm)) {
    for (const g of grads) {
      rt.launch(
        SCALE,
        undefined,
        { G: g.buffer, FACTOR: factor.buffer },
        { n: g.size },
        grid(Math.ceil(g.size / 256)),
      );
    }
  }
  part.dispose();
  factor.dispose();
  return norm;
}
