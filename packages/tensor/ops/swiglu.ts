/**
 * SwiGLU's gate, fused: `y = silu(gate) · up = gate · σ(gate) · up` in one
 * kernel, and both input gradients in one backward kernel:
 * `dgate = dy · up · σ(g)(1 + g(1 − σ(g)))`, `dup = dy · g · σ(g)`.
 * Math in f32; inputs f32 or f16 (the output and gradients are f32 when
 * either input is f32, as the unfused `mul(silu(g), u)` gives).
 *
 * @example The Llama/Mistral MLP
 * ```ts ignore
 * const h = swiglu(linear(x, wGate), linear(x, wUp));
 * const out = linear(h, wDown);
 * ```
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import type { DType } from "../dtype.ts";

type Spec = { g: string; u: string; y: string };

const FORWARD = defineKernel({
  name: "swiglu",
  key: ({ g, u, y }: Spec) => `${g} ${u} ${y}`,
  uniforms: { n: "u32" },
  bindings: ({ g, u, y }) => ({
    Y: { type: `array<${y}>`, access: "read_write" },
    GATE: { type: `array<${g}>` },
    UP: { type: `array<${u}>` },
  }),
  source: ({ y }) => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= P.n) { return; }
  let g = f32(GATE[i]);
  Y[i] = ${y}(g / (1.0 + exp(-g)) * f32(UP[i]));
}`,
});

const BACKWARD = defineKernel({
  name: "swiglu-backward",
  key: ({ g, u, y }: Spec) => `${g} ${u} ${y}`,
  uniforms: { n: "u32" },
  bindings: ({ g, u, y }) => ({
    DG: { type: "array<f32>", access: "read_write" },
    DU: { type: "array<f32>", access: "read_write" },
    GATE: { type: `array<${g}>` },
    UP: { type: `array<${u}>` },
    DY: { type: `array<${y}>` },
  }),
  source: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= P.n) { return; }
  let g = f32(GATE[i]);
  let u = f32(UP[i]);
  let dy = f32(DY[i]);
  let s = 1.0 / (1.0 + exp(-g));
  DG[i] = dy * u * s * (1.0 + g * (1.0 - s));
  DU[i] = dy * g * s;
}`,
});

const swigluOp = defineOp<Record<string, never>>({
  name: "swiglu",
  forward: ([gate, up]) => {
    const out: DType = gate!.dtype === "f16" && up!.dtype === "f16" ? "f16" : "f32";
    const y = Tensor.empty(gate!.shape, out);
    getRuntime().launch(
      FORWARD,
      { g: gate!.dtype, u: up!.dtype, y: out },
      { Y: y.buffer, GATE: gate!.buffer, UP: up!.buffer },
      { n: y.size },
      grid(Math.ceil(y.size / 256)),
    );
    return { output: y, saved: [gate!, up!] };
  },
  backward: (dy, { saved, inputs }) => {
    const [gate, up] = saved as [Tensor, Tensor];
    const dg = Tensor.empty(gate.shape, "f32");
    const du = Tensor.empty(gate.shape, "f32");
    getRuntime().launch(
      BACKWARD,
      { g: gate.dtype, u: up.dtype, y: dy.dtype },
      { DG: dg.buffer, DU: du.buffer, GATE: gate.buffer, UP: up.buffer, DY: dy.buffer },
      { n: gate.size },
      grid(Math.ceil(gate.size / 256)),
    );
    return [inputs[0]!.requiresGrad ? dg : null, inputs[1]!.requiresGrad ? du : null];
  },
});

/** `silu(gate) · up` in one kernel (forward and backward); same shapes, no broadcasting. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (gate.shape.join() !== up.shape.join()) {
    throw new Error(`swiglu: gate ${gate} and up ${up} must have the same shape`);
  }
  for (const t of [gate, up]) {
    if (t.dtype !== "f32" && t.dtype !== "f16") throw new Error(`swiglu: ${t} must be f32 or f16`);
  }
  return swigluOp([gate, up], {});
}
