/**
 * Rotary position embedding, Hugging Face rotate-half convention:
 * `out = x·cos + rotate_half(x)·sin` with `rotate_half(x) = [−x₂, x₁]`.
 *
 * Layout: `x` is `[B, T, H, D]` (what `reshape(linear(h, Wq), [B, T, H, D])`
 * gives, no transpose needed), `positionIds` is i32 `[B, T]`. The cos/sin
 * table `[maxPositions, D]` (cos in the first D/2 columns, sin in the last)
 * comes from {@link ropeTable}, which reproduces HF's float32 computation
 * (inv_freq and angles rounded to f32, cos/sin of that f32 angle), so no
 * large-argument GPU trigonometry is needed. Position ids outside
 * `[0, maxPositions)` are clamped. Backward is the rotation by −θ.
 *
 * {@link ropeQK} rotates queries and keys (same tokens, different head
 * counts) in one dispatch, forward and backward.
 *
 * @module
 */

import { defineMultiOutputOp, defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor, zeros } from "../tensor.ts";

/** Host-side HF cos/sin table: `[maxPositions, headDim]` f32 values. */
export function ropeTableData(maxPositions: number, headDim: number, theta: number): Float32Array {
  if (headDim % 2) throw new Error(`rope: head dim ${headDim} must be even`);
  const half = headDim / 2, f = Math.fround;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(theta ** f((2 * i) / headDim)));
  const out = new Float32Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = f(p * inv[i]!);
      out[p * headDim + i] = Math.cos(angle);
      out[p * headDim + half + i] = Math.sin(angle);
    }
  }
  return out;
}

/** Uploads the cos/sin table (see module docs). */
export function ropeTable(maxPositions: number, headDim: number, theta: number): Tensor {
  return Tensor.fromArray(ropeTableData(maxPositions, headDim, theta), [maxPositions, headDim]);
}

const ROPE = defineKernel({
  name: "rope",
  key: ({ t }: { t: string }) => t,
  uniforms: { tokens: "u32", H: "u32", D: "u32", maxPos: "u32", sign: "f32" },
  bindings: ({ t }) => ({
    Y: { type: `array<${t}>`, access: "read_write" },
    X: { type: `array<${t}>` },
    POS: { type: "array<i32>" },
    TAB: { type: "array<f32>" },
  }),
  source: ({ t }) => `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let tokens = P.tokens; let H = P.H; let D = P.D; let maxPos = P.maxPos; let sgn = P.sign;
  let half = D / 2u;
  let i = g.x + g.y * nw.x * 64u;
  if (i >= tokens * H * half) { return; }
  let j = i % half;
  let th = i / half;          // token * H + head
  let tok = th / H;
  let p = u32(clamp(POS[tok], 0, i32(maxPos) - 1));
  let c = TAB[p * D + j];
  let s = sgn * TAB[p * D + half + j];
  let base = th * D;
  let x1 = f32(X[base + j]);
  let x2 = f32(X[base + half + j]);
  Y[base + j] = ${t}(x1 * c - x2 * s);
  Y[base + half + j] = ${t}(x2 * c + x1 * s);
}`,
});

function rotate(x: Tensor, pos: Tensor, table: Tensor, sign: number): Tensor {
  const [B, T, H, D] = x.shape as [number, number, number, number];
  const y = Tensor.empty(x.shape, x.dtype);
  const n = B * T * H * (D / 2);
  // The backward is the same rotation by the opposite angle (sign −1).
  getRuntime().launch(
    ROPE,
    { t: x.dtype },
    { Y: y.buffer, X: x.buffer, POS: pos.buffer, TAB: table.buffer },
    { tokens: B * T, H, D, maxPos: table.shape[0]!, sign },
    grid(Math.ceil(n / 64)),
  );
  return y;
}

const ropeOp = defineOp<Record<string, never>>({
  name: "rope",
  forward: ([x, pos, table]) => ({ output: rotate(x!, pos!, table!, 1), saved: [pos!, table!] }),
  backward: (dy, { saved }) => [rotate(dy, saved[0]!, saved[1]!, -1), null, null],
});

/** Applies RoPE to `x` `[B, T, H, D]` at i32 `positionIds` `[B, T]` using `table`. */
export function rope(x: Tensor, positionIds: Tensor, table: Tensor): Tensor {
  if (x.rank !== 4) throw new Error(`rope: x must be [B, T, H, D], got ${x}`);
  const [B, T, , D] = x.shape as [number, number, number, number];
  if (positionIds.dtype !== "i32" || positionIds.size !== B * T) {
    throw new Error(`rope: positionIds must be i32 [${B}, ${T}], got ${positionIds}`);
  }
  if (table.rank !== 2 || table.shape[1] !== D) {
    throw new Error(`rope: table ${table} is not [*, ${D}]`);
  }
  return ropeOp([x, positionIds, table], {});
}

const ROPE_QK = defineKernel({
  name: "rope_qk",
  key: ({ t }: { t: string }) => t,
  uniforms: { tokens: "u32", Hq: "u32", Hk: "u32", D: "u32", maxPos: "u32", sign: "f32" },
  bindings: ({ t }) => ({
    YQ: { type: `array<${t}>`, access: "read_write" },
    YK: { type: `array<${t}>`, access: "read_write" },
    XQ: { type: `array<${t}>` },
    XK: { type: `array<${t}>` },
    POS: { type: "array<i32>" },
    TAB: { type: "array<f32>" },
  }),
  source: ({ t }) => `
fn rotated(x1: f32, x2: f32, c: f32, s: f32) -> vec2<f32> { return vec2(x1 * c - x2 * s, x2 * c + x1 * s); }
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let tokens = P.tokens; let Hq = P.Hq; let Hk = P.Hk; let D = P.D; let sgn = P.sign;
  let half = D / 2u;
  let H = Hq + Hk;
  let i = g.x + g.y * nw.x * 64u;
  if (i >= tokens * H * half) { return; }
  let j = i % half;
  let th = i / half;           // token * (Hq + Hk) + head, queries' heads first
  let tok = th / H;
  let head = th % H;
  let p = u32(clamp(POS[tok], 0, i32(P.maxPos) - 1));
  let c = TAB[p * D + j];
  let s = sgn * TAB[p * D + half + j];
  if (head < Hq) {
    let base = (tok * Hq + head) * D;
    let r = rotated(f32(XQ[base + j]), f32(XQ[base + half + j]), c, s);
    YQ[base + j] = ${t}(r.x);
    YQ[base + half + j] = ${t}(r.y);
  } else {
    let base = (tok * Hk + head - Hq) * D;
    let r = rotated(f32(XK[base + j]), f32(XK[base + half + j]), c, s);
    YK[base + j] = ${t}(r.x);
    YK[base + half + j] = ${t}(r.y);
  }
}`,
});

function rotateQK(q: Tensor, k: Tensor, pos: Tensor, table: Tensor, sign: number): Tensor[] {
  const [B, T, Hq, D] = q.shape as [number, number, number, number];
  const Hk = k.shape[2]!;
  const yq = Tensor.empty(q.shape, q.dtype);
  const yk = Tensor.empty(k.shape, k.dtype);
  const n = B * T * (Hq + Hk) * (D / 2);
  getRuntime().launch(
    ROPE_QK,
    { t: q.dtype },
    {
      YQ: yq.buffer,
      YK: yk.buffer,
      XQ: q.buffer,
      XK: k.buffer,
      POS: pos.buffer,
      TAB: table.buffer,
    },
    { tokens: B * T, Hq, Hk, D, maxPos: table.shape[0]!, sign },
    grid(Math.ceil(n / 64)),
  );
  return [yq, yk];
}

const ropeQKOp = defineMultiOutputOp<Record<string, never>>({
  name: "rope_qk",
  forward: ([q, k, pos, table]) => {
    const [yq, yk] = rotateQK(q!, k!, pos!, table!, 1);
    return { output: yq!, extraOutputs: [yk!], saved: [pos!, table!] };
  },
  backward: (dq, { saved, inputs }, [dk]) => {
    // A missing key gradient is zero (the rotation of zero is zero).
    const dkOrZero = dk ?? zeros(inputs[1]!.shape, dq.dtype);
    if (dq.dtype !== dkOrZero.dtype) {
      throw new Error("ropeQK backward: q and k gradients differ in dtype");
    }
    const [gq, gk] = rotateQK(dq, dkOrZero, saved[0]!, saved[1]!, -1);
    return [gq!, gk!, null, null];
  },
});

/**
 * RoPE of queries `[B, T, Hq, D]` and keys `[B, T, Hkv, D]` at the same i32
 * `positionIds` `[B, T]`, in one dispatch (forward and backward); the same
 * values as two {@link rope} calls.
 */
export function ropeQK(
  q: Tensor,
  k: Tensor,
  positionIds: Tensor,
  table: Tensor,
): [Tensor, Tensor] {
  if (q.rank !== 4 || k.rank !== 4) {
    throw new Error(`ropeQK: q ${q} and k ${k} must be [B, T, H, D]`);
  }
  const [B, T, , D] = q.shape as [number, number, number, number];
  if (k.shape[0] !== B || k.shape[1] !== T || k.shape[3] !== D || k.dtype !== q.dtype) {
    throw new Error(`ropeQK: keys ${k} do not match queries ${q}`);
  }
  if (positionIds.dtype !== "i32" || positionIds.size !== B * T) {
    throw new Error(`ropeQK: positionIds must be i32 [${B}, ${T}], got ${positionIds}`);
  }
  if (table.rank !== 2 || table.shape[1] !== D) {
    throw new Error(`ropeQK: table ${table} is not [*, ${D}]`);
  }
  const [yq, yk] = ropeQKOp([q, k, positionIds, table], {});
  return [yq!, yk!];
}
