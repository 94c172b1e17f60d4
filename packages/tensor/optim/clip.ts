/**
 * Global gradient-norm clipping on the GPU with multi-tensor kernels: the
 * squared L2 norm over all gradients (and a count of non-finite values) is
 * reduced in one dispatch per group of up to 16 gradients plus one total,
 * and every gradient is scaled by `min(1, maxNorm / (norm + 1e-6))` without
 * reading anything back.
 *
 * {@link gradNormStats} stops before scaling: it returns the norm and a
 * factor tensor `[multiplier, foundNonFinite]` that `AdamW.step` applies as
 * it reads each gradient (no pass over the gradients), with an optional
 * loss-scale divisor folded in (mixed precision: the norm is that of the
 * unscaled gradients, as PyTorch's `GradScaler.unscale_` then
 * `clip_grad_norm_` give).
 *
 * @example Clip in place, or fold the factor into the optimizer
 * ```ts ignore
 * import { clipGradNorm, gradNormStats } from "@irforge/tensor";
 * clipGradNorm(params, 1.0).dispose();
 * const { norm, factor } = gradNormStats(params, 1.0, { lossScale: 65536 });
 * optimizer.step(lr, { gradFactor: factor });
 * ```
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
import {
  findSlot,
  groupTensors,
  slotAccessors,
  slotsPerLaunch,
  slotUniforms,
  slotValues,
} from "./multi_tensor.ts";

/** Most partial sums one gradient gets. */
const MAX_PARTS = 64;

const PARTIAL = defineKernel({
  name: "clip-partial",
  key: ({ k, subgroups }: { k: number; subgroups: boolean }) =>
    `${k}${subgroups ? " subgroups" : ""}`,
  uniforms: { part: "u32", ...slotUniforms("n", "u32"), ...slotUniforms("wgs", "u32") },
  bindings: ({ k }) => {
    const b: Record<string, { type: string; access?: "read_write" }> = {
      PART: { type: "array<f32>", access: "read_write" },
    };
    for (let s = 0; s < k; s++) b[`G${s}`] = { type: "array<f32>" };
    return b;
  },
  source: ({ k, subgroups }) => `
${rowReduce(subgroups)}
${slotAccessors("grad", "G", k, false)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>${
    subgroupArgs(subgroups)
  }) {
  ${subgroupInit(subgroups)}
  let wid = w.x;
  ${findSlot("wgs", k)}
  var ns = array<u32, ${k}>(${Array.from({ length: k }, (_, s) => `P.n${s}`).join(", ")});
  var s2 = 0.0; var bad = 0.0;
  if (slot < ${k}u) {
    let n = ns[slot]; let stride = counts[slot] * ${ROW_WG}u;
    for (var i = (wid - first) * ${ROW_WG}u + l.x; i < n; i += stride) {
      let g = grad(slot, i);
      // NaN fails every comparison: counted as non-finite with ±inf.
      if (abs(g) <= 3.4028234e38) { s2 += g * g; } else { bad += 1.0; }
    }
  }
  s2 = wg_sum(s2, l.x);
  bad = wg_sum(bad, l.x);
  if (l.x == 0u) { PART[2u * (P.part + wid)] = s2; PART[2u * (P.part + wid) + 1u] = bad; }
}`,
});

const TOTAL = defineKernel({
  name: "clip-total",
  key: ({ subgroups }: { subgroups: boolean }) => (subgroups ? "subgroups" : "workgroup"),
  uniforms: { n: "u32", maxNorm: "f32", clip: "u32", invScale: "f32" },
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
  let n = P.n;
  var s = 0.0; var bad = 0.0;
  for (var i = l.x; i < n; i += ${ROW_WG}u) { s += PART[2u * i]; bad += PART[2u * i + 1u]; }
  s = wg_sum(s, l.x);
  bad = wg_sum(bad, l.x);
  if (l.x == 0u) {
    if (bad > 0.0) {
      // As clip_grad_norm_ without a scaler: a non-finite norm poisons the update.
      NORM[0] = nan_f32();
      FACTOR[0] = nan_f32();
      FACTOR[1] = 1.0;
    } else {
      let norm = sqrt(s) * P.invScale;
      NORM[0] = norm;
      var f = 1.0;
      if (P.clip != 0u) { f = min(1.0, P.maxNorm / (norm + 1e-6)); }
      FACTOR[0] = f * P.invScale;
      FACTOR[1] = 0.0;
    }
  }
}`,
});

const SCALE = defineKernel({
  name: "clip-scale",
  key: ({ k }: { k: number }) => String(k),
  uniforms: { ...slotUniforms("n", "u32") },
  bindings: ({ k }) => {
    const b: Record<string, { type: string; access?: "read_write" }> = {};
    for (let s = 0; s < k; s++) b[`G${s}`] = { type: "array<f32>", access: "read_write" };
    b.FACTOR = { type: "array<f32>" };
    return b;
  },
  source: ({ k }) => `
${slotAccessors("grad", "G", k, true)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>) {
  let wid = w.x + w.y * nw.x;
  var ns = array<u32, ${k}>(${Array.from({ length: k }, (_, s) => `P.n${s}`).join(", ")});
  var slot = ${k}u; var first = 0u; var acc = 0u;
  for (var s = 0u; s < ${k}u; s++) {
    let c = (ns[s] + 255u) / 256u;
    if (slot == ${k}u && wid < acc + c) { slot = s; first = acc; }
    acc += c;
  }
  if (slot == ${k}u) { return; }
  let i = (wid - first) * 256u + l.x;
  if (i < ns[slot]) { grad_store(slot, i, grad(slot, i) * FACTOR[0]); }
}`,
});

/** What {@link gradNormStats} returns; the caller owns both tensors. */
export interface GradNormStats {
  /** Global L2 norm of the (unscaled) gradients, `[1]`; NaN when a gradient is not finite. */
  norm: Tensor;
  /**
   * `[multiplier, foundNonFinite]`: multiplier = clip factor / loss scale
   * (NaN when non-finite); foundNonFinite = 1 when any gradient holds inf/NaN.
   */
  factor: Tensor;
}

/** Options of {@link gradNormStats}. */
export interface GradNormOptions {
  /** The gradients were computed from `loss · lossScale` (default 1). */
  lossScale?: number;
}

function gradients(params: readonly Tensor[]): Tensor[] {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  for (const g of grads) {
    if (g.dtype !== "f32") throw new Error(`clipGradNorm: gradient ${g} must be f32`);
  }
  return grads;
}

/**
 * The global gradient norm of `params` (those with `.grad`, f32) and the
 * factor that clips it to `maxNorm` (`Infinity`: no clipping), divided by
 * `lossScale`; nothing is read back and no gradient is changed.
 */
export function gradNormStats(
  params: readonly Tensor[],
  maxNorm: number,
  options: GradNormOptions = {},
): GradNormStats {
  const grads = gradients(params);
  const rt = getRuntime();
  const groups = groupTensors(grads, slotsPerLaunch(1, 1), Infinity);
  const partsOf = (g: Tensor) =>
    Math.max(1, Math.min(MAX_PARTS, Math.ceil(g.size / (ROW_WG * 16))));
  const totalParts = Math.max(1, grads.reduce((n, g) => n + partsOf(g), 0));
  const part = Tensor.empty([2 * totalParts], "f32");
  const norm = Tensor.empty([1], "f32");
  const factor = Tensor.empty([2], "f32");
  let at = 0;
  const subgroups = rowSubgroups();
  for (const group of groups) {
    const wgs = group.map(partsOf);
    const buffers: Record<string, GPUBuffer> = { PART: part.buffer };
    group.forEach((g, s) => buffers[`G${s}`] = g.buffer);
    const count = wgs.reduce((a, b) => a + b, 0);
    rt.launch(
      PARTIAL,
      { k: group.length, subgroups },
      buffers,
      { part: at, ...slotValues("n", group.map((g) => g.size)), ...slotValues("wgs", wgs) },
      [count],
    );
    at += count;
  }
  if (grads.length === 0) part.write(new Float32Array(2));
  rt.launch(
    TOTAL,
    { subgroups },
    { NORM: norm.buffer, FACTOR: factor.buffer, PART: part.buffer },
    {
      n: totalParts,
      maxNorm: Number.isFinite(maxNorm) ? maxNorm : 0,
      clip: Number.isFinite(maxNorm) ? 1 : 0,
      invScale: 1 / (options.lossScale ?? 1),
    },
    [1],
  );
  part.dispose();
  return { norm, factor };
}

/**
 * Clips the gradients of `params` (those with `.grad`, f32) in place to a
 * global L2 norm of at most `maxNorm`; returns the pre-clip norm as a
 * one-element f32 tensor (the caller owns it; reading it is optional).
 * `maxNorm = Infinity` only measures.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): Tensor {
  const { norm, factor } = gradNormStats(params, maxNorm);
  if (Number.isFinite(maxNorm)) {
    const rt = getRuntime();
    for (const group of groupTensors(gradients(params), slotsPerLaunch(1, 1), Infinity)) {
      const buffers: Record<string, GPUBuffer> = { FACTOR: factor.buffer };
      group.forEach((g, s) => buffers[`G${s}`] = g.buffer);
      rt.launch(
        SCALE,
        { k: group.length },
        buffers,
        slotValues("n", group.map((g) => g.size)),
        grid(group.reduce((n, g) => n + Math.ceil(g.size / 256), 0)),
      );
    }
  }
  factor.dispose();
  return norm;
}
