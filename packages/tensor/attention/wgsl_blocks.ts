/**
 * WGSL generation helpers of the register-blocked attention kernels: `vec4`
 * row access to the `[rows, D]` tensors (as `array<vec4<f32>>` when D is a
 * multiple of 4, as scalars with a zero-padded last chunk otherwise) and
 * unrolled statements over a thread's register block.
 *
 * @module
 */

import type { BindingDecl } from "../kernel.ts";

/** Storage binding of a `[rows, D]` f32 tensor: `vec4` elements when D allows. */
export function rowBinding(headDim: number, access: "read" | "read_write" = "read"): BindingDecl {
  return { type: headDim % 4 === 0 ? "array<vec4<f32>>" : "array<f32>", access };
}

/** `fn load_<name>(row: u32, c: u32) -> vec4<f32>`: chunk `c` of row `row`, zeros past D. */
export function loadRowFn(name: string, headDim: number): string {
  const d4 = Math.ceil(headDim / 4);
  if (headDim % 4 === 0) {
    return `fn load_${name}(row: u32, c: u32) -> vec4<f32> { return ${name}[row * ${d4}u + c]; }`;
  }
  const rem = headDim % 4;
  const partial = [0, 1, 2, 3].map((e) => e < rem ? `${name}[o + ${e}u]` : "0.0").join(", ");
  return `fn load_${name}(row: u32, c: u32) -> vec4<f32> {
  let o = row * ${headDim}u + 4u * c;
  if (c + 1u < ${d4}u) { return vec4<f32>(${name}[o], ${name}[o + 1u], ${name}[o + 2u], ${name}[o + 3u]); }
  return vec4<f32>(${partial});
}`;
}

/** `fn store_<name>(row: u32, c: u32, value: vec4<f32>)`: writes chunk `c` of row `row` (within D). */
export function storeRowFn(name: string, headDim: number): string {
  const d4 = Math.ceil(headDim / 4);
  if (headDim % 4 === 0) {
    return `fn store_${name}(row: u32, c: u32, value: vec4<f32>) { ${name}[row * ${d4}u + c] = value; }`;
  }
  const rem = headDim % 4;
  const partial = [0, 1, 2, 3].filter((e) => e < rem).map((e) =>
    `${name}[o + ${e}u] = value[${e}];`
  ).join(" ");
  return `fn store_${name}(row: u32, c: u32, value: vec4<f32>) {
  let o = row * ${headDim}u + 4u * c;
  if (c + 1u < ${d4}u) {
    ${name}[o] = value.x; ${name}[o + 1u] = value.y; ${name}[o + 2u] = value.z; ${name}[o + 3u] = value.w;
    return;
  }
  ${partial}
}`;
}

/** `body(i)` for i in 0..n, joined by newlines (the register block is unrolled in the source). */
export function unroll(n: number, body: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => body(i)).join("\n");
}

/** `body(a, b)` for a in 0..n, b in 0..m. */
export function unroll2(n: number, m: number, body: (a: number, b: number) => string): string {
  return unroll(n, (a) => unroll(m, (b) => body(a, b)));
}

/** The component names of a vec4, by index. */
export const LANES = ["x", "y", "z", "w"] as const;
