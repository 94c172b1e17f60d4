/**
 * Test helpers shared across packages: tolerances, `assertClose`, finite
 * differences.
 *
 * @module
 */

export { F16_TOL, F32_TOL, GRAD_TOL, tolFor } from "./tolerance.ts";
export { assertClose, type CloseReport, type Numbers, relativeError } from "./assert_close.ts";
export { numericGrad, toF64, weightedSum } from "./gradcheck.ts";
export { gpuTest } from "./gpu.ts";
export { type CheckInput, checkOp, type CheckSpec } from "./check_op.ts";
