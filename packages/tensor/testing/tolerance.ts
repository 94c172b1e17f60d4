/**
 * The one place test tolerances live. Errors are relative to the largest
 * reference magnitude: max|a − b| / max|b|.
 *
 * @module
 */

/** Relative tolerance for f32 kernels against a float64 reference. */
export const F32_TOL = 1e-4;
/** Relative tolerance for f16 storage/operands against a float64 reference. */
export const F16_TOL = 1e-2;
/** Relative tolerance for GPU gradients against float64 finite differences. */
export const GRAD_TOL = 1e-3;

/** Tolerance for a dtype name. */
export function tolFor(dtype: string): number {
  return dtype === "f16" ? F16_TOL : F32_TOL;
}
