/**
 * Element types a {@link Tensor} can hold.
 *
 * @module
 */

/**
 * Element type of a tensor.
 *
 * - `f32`, `f16`: IEEE floats (`f16` needs the adapter's `shader-f16`).
 * - `i32`, `u32`: integers (ids, positions, masks).
 * - `nf4`: QLoRA's packed 4-bit NormalFloat codes, 2 codes per byte, with a
 *   per-block absmax stored alongside (see `nf4.ts`).
 */
export type DType = "f32" | "f16" | "i32" | "u32" | "nf4";

/** Floating dtypes that arithmetic kernels accept. */
export type FloatDType = "f32" | "f16";

/** The typed array `toArray()` returns for a dtype (f16 and nf4 read back as f32). */
export type ArrayFor<D extends DType> = D extends "i32" ? Int32Array
  : D extends "u32" ? Uint32Array
  : Float32Array;

/** Bytes one element occupies (0.5 for `nf4`). */
export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case "f32":
    case "i32":
    case "u32":
      return 4;
    case "f16":
      return 2;
    case "nf4":
      return 0.5;
  }
}

/** True for `f32` and `f16`. */
export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === "f32" || dtype === "f16";
}

/** The WGSL scalar type storing one element (nf4 has none; it is read as packed u32). */
export function wgslType(dtype: DType): string {
  if (dtype === "nf4") throw new Error("nf4 has no WGSL element type; dequantise it first");
  return dtype;
}
