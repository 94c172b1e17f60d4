/**
 * WGSL generation helpers of the register-blocked attention kernels: `vec4`
 * row access to the `[rows, D]` tensors (as `array<vec4<T>>` when D is a
 * multiple of 4, as scalars with a zero-padded last chunk otherwise; T is f32
 * or f16, widened to f32 on load and rounded on store) and unrolled
 * statements over a thread's register block.
 *
 * @module
 */

import type { BindingDecl } from "../kernel.ts";

/** Element type of an attention tensor in storage (arithmetic is always f32). */
export type AttentionElement = "f32" | "f16";

/** Bytes of one stored element. */
export function elementBytes(element: AttentionElement): number {
  return element === "f16" ? 2 : 4;
}

/** Storage binding of a `[rows, D]` tensor of `element`s: `vec4` elements when D allows. */
export function rowBinding(
  headDim: number,
  access: "read" | "read_write" = "read",
  element: AttentionElement = "f32",
): BindingDecl {
  return { type: headDim % 4 === 0 ? `array<vec4<${element}>>` : `array<${element}>`, access };
}

/**
 * `fn load_<name>(row: u32, c: u32) -> vec4<f32>`: chunk `c` of row `row`,
 * zeros past D, widened to f32 when stored as f16.
 */
export function loadRowFn(
  name: string,
  headDim: number,
  element: AttentionElement = "f32",
): string {
  const d4 = Math.ceil(headDim / 4);
  const widen = (x: string) => element === "f32" ? x : `f32(${x})`;
  if (headDim % 4 === 0) {
    const chunk = `${name}[row * ${d4}u + c]`;
    return `fn load_${name}(row: u32, c: u32) -> vec4<f32> { return ${
      element === "f32" ? chunk : `vec4<f32>(${chunk})`
    }; }`;
  }
  const rem = headDim % 4;
  const at = (e: number) => widen(`${name}[o + ${e}u]`);
  const partial = [0, 1, 2, 3].map((e) => e < rem ? at(e) : "0.0").join(", ");
  return `fn load_${name}(row: u32, c: u32) -> vec4<f32> {
  let o = row * ${headDim}u + 4u * c;
  if (c + 1u < ${d4}u) { return vec4<f32>(${at(0)}, ${at(1)}, ${at(2)}, ${at(3)}); }
  return vec4<f32>(${partial});
}`;
}

/**
 * `fn store_<name>(row: u32, c: u32, value: vec4<f32>)`: writes chunk `c` of
 * row `row` (within D), rounded to f16 when stored as f16.
 */
export function storeRowFn(
  name: string,
  headDim: number,
  element: AttentionElement = "f32",
): string {
  const d4 = Math.ceil(headDim / 4);
  const narrow = (x: string) => element === "f32" ? x : `${element}(${x})`;
  if (headDim % 4 === 0) {
    const value = element === "f32" ? "value" : `vec4<${element}>(value)`;
    return `fn store_${name}(row: u32, c: u32, value: vec4<f32>) { ${name}[row * ${d4}u + c] = ${value}; }`;
  }
  const rem = headDim % 4;
  const partial = [0, 1, 2, 3].filter((e) => e < rem).map((e) =>
    `${name}[o + ${e}u] = ${narrow(`value[${e}]`)};`
  ).join(" ");
  const all = [0, 1, 2, 3].map((e) => `${name}[o + ${e}u] = ${narrow(`value.${LANES[e]}`)};`)
    .join(" ");
  return `fn store_${name}(row: u32, c: u32, value: vec4<f32>) {
  let o = row * ${headDim}u + 4u * c;
  if (c + 1u < ${d4}u) {
    ${all}
    return;
  }
  ${partial}
}`;
}

/** One operand of {@link stageRows}: `load_<load>` into `tile[offset + r·S4 + c]`. */
export interface StagedOperand {
  /** The row loader's name (`load_<load>`, see {@link loadRowFn}). */
  load: string;
  /** The workgroup tile it fills. */
  tile: string;
  /** The register the chunk passes through. */
  value: string;
  /** An offset into the tile (double-buffered tiles), if any. */
  offset?: string;
}

/**
 * WGSL that stages `rows` rows of `vec4` chunks into workgroup tiles (stride
 * `S4`), every invocation taking chunks `li, li + THREADS, …`: rows from
 * `rowsHere` on are zero (past the sequence end), row r comes from row
 * `rowBase + r` of each operand. `indent` prefixes every line.
 */
export function stageRows(
  rows: string,
  rowsHere: string,
  rowBase: string,
  operands: StagedOperand[],
  indent = "  ",
): string {
  const at = (o: StagedOperand) => `${o.tile}[${o.offset ? `${o.offset} + ` : ""}r * S4 + c]`;
  const lines = [
    `for (var x = li; x < ${rows} * D4; x += THREADS) {`,
    "  let r = x / D4;",
    "  let c = x % D4;",
    ...operands.map((o) => `  var ${o.value} = vec4<f32>(0.0);`),
    `  if (r < ${rowsHere}) {`,
    ...operands.map((o) => `    ${o.value} = load_${o.load}(${rowBase} + r, c);`),
    "  }",
    ...operands.map((o) => `  ${at(o)} = ${o.value};`),
    "}",
  ];
  return lines.map((line) => indent + line).join("\n");
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
