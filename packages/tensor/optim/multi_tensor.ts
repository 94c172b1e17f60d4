/**
 * Multi-tensor launches for the optimizer and gradient clipping: one
 * dispatch covers a group of up to {@link MAX_SLOTS} tensors, each bound as
 * its own storage binding (no copies). Workgroups are assigned to slots in
 * order; a workgroup finds its slot from the per-slot workgroup counts in the
 * uniforms, so every thread of a workgroup takes the same branch of the
 * generated `switch` over the bindings.
 *
 * @module
 */

import { getRuntime } from "../runtime.ts";

/** Most tensors one launch covers (bounded by the uniforms: 3 fields per slot in 256 bytes). */
export const MAX_SLOTS = 16;

let slotOverride: number | undefined;

/**
 * Tensors per launch on this device: {@link MAX_SLOTS}, fewer when the
 * device allows few storage bindings per stage (`perSlot` bindings per
 * tensor, `fixed` others), or the value set by {@link setMultiTensorSlotsForTesting}.
 */
export function slotsPerLaunch(perSlot: number, fixed: number): number {
  const limit = getRuntime().device.limits.maxStorageBuffersPerShaderStage;
  const fit = Math.max(1, Math.floor((limit - fixed) / perSlot));
  return Math.max(1, Math.min(MAX_SLOTS, fit, slotOverride ?? MAX_SLOTS));
}

/** Caps tensors per launch (tests exercise several groups); `undefined` restores. */
export function setMultiTensorSlotsForTesting(slots: number | undefined): void {
  slotOverride = slots;
}

/** Uniform declarations `<prefix>0 … <prefix>15` of one type. */
export function slotUniforms<T extends "u32" | "f32">(
  prefix: string,
  type: T,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (let s = 0; s < MAX_SLOTS; s++) out[`${prefix}${s}`] = type;
  return out;
}

/** Values for {@link slotUniforms}: `values[s]`, zero past the group. */
export function slotValues(prefix: string, values: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (let s = 0; s < MAX_SLOTS; s++) out[`${prefix}${s}`] = values[s] ?? 0;
  return out;
}

/**
 * WGSL: `fn <name>(s: u32, i: u32) -> f32` reading `<binding><s>[i]`, and, when
 * `store`, `fn <name>_store(s, i, v)` writing it, for `k` slots.
 */
export function slotAccessors(name: string, binding: string, k: number, store: boolean): string {
  const cases = (body: (s: number) => string) =>
    Array.from({ length: k }, (_, s) => `    case ${s}u: { ${body(s)} }`).join("\n");
  let out = `fn ${name}(s: u32, i: u32) -> f32 {
  switch s {
${cases((s) => `return ${binding}${s}[i];`)}
    default: { return 0.0; }
  }
}
`;
  if (store) {
    out += `fn ${name}_store(s: u32, i: u32, v: f32) {
  switch s {
${cases((s) => `${binding}${s}[i] = v;`)}
    default: {}
  }
}
`;
  }
  return out;
}

/**
 * WGSL statements finding the slot of workgroup `wid` from per-slot
 * workgroup counts `P.<wgPrefix>s`: defines `slot` and `first` (the slot's
 * first workgroup); `slot == k` when `wid` is past the group.
 */
export function findSlot(wgPrefix: string, k: number): string {
  return `var slot = ${k}u; var first = 0u;
  var acc = 0u;
  var counts = array<u32, ${k}>(${
    Array.from({ length: k }, (_, s) => `P.${wgPrefix}${s}`).join(", ")
  });
  for (var s = 0u; s < ${k}u; s++) {
    if (slot == ${k}u && wid < acc + counts[s]) { slot = s; first = acc; }
    acc += counts[s];
  }`;
}

/** Splits `items` into groups of at most `slots` whose element total stays within `maxElements`. */
export function groupTensors<T extends { size: number }>(
  items: readonly T[],
  slots: number,
  maxElements: number,
): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length === slots || total + item.size > maxElements)) {
      groups.push(current);
      current = [];
      total = 0;
    }
    current.push(item);
    total += item.size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
