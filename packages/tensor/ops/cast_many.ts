/**
 * f32 → f16 conversion of many tensors in few dispatches, in place into
 * existing f16 tensors: what refreshes the f16 copies of the master weights
 * after an optimizer step under mixed precision. One launch covers a group
 * of tensors (multi-tensor, as AdamW), each bound as its own storage
 * binding; the conversion is the one `cast` does (`f16(x)`), so the results
 * are bit for bit `cast(source, "f16")`. No autograd: the caller owns the
 * meaning of the copies.
 *
 * @module
 */

import { defineKernel } from "../kernel.ts";
import { getRuntime, grid, maxBindingBytes } from "../runtime.ts";
import type { Tensor } from "../tensor.ts";
import {
  findSlot,
  groupTensors,
  slotsPerLaunch,
  slotUniforms,
  slotValues,
} from "../optim/multi_tensor.ts";

const WG = 256;

const CAST_MANY = defineKernel({
  name: "cast_f16_many",
  key: ({ k }: { k: number }) => String(k),
  uniforms: { ...slotUniforms("n", "u32"), ...slotUniforms("wg", "u32") },
  bindings: ({ k }) => {
    const b: Record<string, { type: string; access?: "read_write" }> = {};
    for (let s = 0; s < k; s++) b[`D${s}`] = { type: "array<f16>", access: "read_write" };
    for (let s = 0; s < k; s++) b[`S${s}`] = { type: "array<f32>" };
    return b;
  },
  source: ({ k }) => `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>) {
  let wid = w.x + w.y * nw.x;
  ${findSlot("wg", k)}
  if (slot == ${k}u) { return; }
  let i = (wid - first) * ${WG}u + l.x;
  var ns = array<u32, ${k}>(${Array.from({ length: k }, (_, s) => `P.n${s}`).join(", ")});
  if (i >= ns[slot]) { return; }
  switch slot {
${Array.from({ length: k }, (_, s) => `    case ${s}u: { D${s}[i] = f16(S${s}[i]); }`).join("\n")}
    default: {}
  }
}`,
});

/**
 * Writes `f16(source)` into each `target` (same size; f32 sources, f16
 * targets) with one dispatch per group of tensors.
 *
 * @example
 * ```ts
 * import { castF16Into, Tensor } from "@irforge/tensor";
 * const w = Tensor.fromArray([0.1, 2, -3], [3]);
 * const w16 = Tensor.empty([3], "f16");
 * castF16Into([{ source: w, target: w16 }]);
 * ```
 */
export function castF16Into(pairs: readonly { source: Tensor; target: Tensor }[]): void {
  for (const { source, target } of pairs) {
    if (source.dtype !== "f32" || target.dtype !== "f16" || source.size !== target.size) {
      throw new Error(`castF16Into: ${source} → ${target} must be f32 → f16 of one size`);
    }
  }
  const items = pairs.filter((p) => p.source.size !== 0).map((p) => ({
    ...p,
    size: p.source.size,
  }));
  // Per slot: the source and the target.
  const slots = slotsPerLaunch(2, 0);
  const rt = getRuntime();
  for (const group of groupTensors(items, slots, Math.floor(maxBindingBytes() / 4))) {
    const buffers: Record<string, GPUBuffer> = {};
    const n: number[] = [], wg: number[] = [];
    group.forEach(({ source, target }, s) => {
      buffers[`S${s}`] = source.buffer;
      buffers[`D${s}`] = target.buffer;
      n.push(source.size);
      wg.push(Math.ceil(source.size / WG));
    });
    rt.launch(
      CAST_MANY,
      { k: group.length },
      buffers,
      { ...slotValues("n", n), ...slotValues("wg", wg) },
      grid(wg.reduce((a, b) => a + b, 0)),
    );
  }
}
