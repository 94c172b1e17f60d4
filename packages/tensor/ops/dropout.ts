/**
 * Seeded dropout without a stored mask: element i is kept when
 * `hash(seed, i) / 2³² ≥ p` (PCG-style integer hash), kept values are scaled
 * by 1/(1−p). Forward and backward recompute the same mask from (seed, i);
 * {@link dropoutMask} is the CPU reference. `p = 0` is the identity.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { reshape } from "./shape.ts";

const DROPOUT = defineKernel({
  name: "dropout",
  key: () => "",
  uniforms: { n: "u32", seed: "u32", threshold: "u32", scale: "f32" },
  bindings: () => ({
    Y: { type: "array<f32>", access: "read_write" },
    X: { type: "array<f32>" },
  }),
  source: () => `
fn pcg(x: u32) -> u32 {
  let s = x * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = P.n; let seed = P.seed; let threshold = P.threshold; let scale = P.scale;
  let i = g.x + g.y * nw.x * 256u;
  if (i >= n) { return; }
  let keep = pcg(i ^ pcg(seed)) >= threshold;
  Y[i] = select(0.0, X[i] * scale, keep);
}`,
});

function pcg(x: number): number {
  const s = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

function threshold(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}

/** CPU reference of the kept-element mask (1 kept, 0 dropped). */
export function dropoutMask(n: number, p: number, seed: number): Uint8Array {
  const t = threshold(p), hs = pcg(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = pcg((i ^ hs) >>> 0) >= t ? 1 : 0;
  return out;
}

function apply(x: Tensor, p: number, seed: number): Tensor {
  const y = Tensor.empty(x.shape, "f32");
  getRuntime().launch(
    DROPOUT,
    undefined,
    { Y: y.buffer, X: x.buffer },
    { n: x.size, seed, threshold: threshold(p), scale: 1 / (1 - p) },
    grid(Math.ceil(x.size / 256)),
  );
  return y;
}

const dropoutOp = defineOp<{ p: number; seed: number }>({
  name: "dropout",
  forward: ([x], { p, seed }) => ({ output: apply(x!, p, seed) }),
  backward: (dy, { attrs }) => [apply(dy, attrs.p, attrs.seed)],
});

/** Dropout with probability `p` (0 ≤ p < 1) and a 32-bit `seed` (f32 tensors). */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (x.dtype !== "f32") throw new Error(`dropout: needs f32, got ${x}`);
  if (p === 0) return reshape(x, x.shape);
  return dropoutOp([x], { p, seed: seed >>> 0 });
}
