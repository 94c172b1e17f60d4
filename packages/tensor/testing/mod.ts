/**
 * Test helpers shared across packages: tolerances, `assertClose`, finite
 * differences.
 *
 * @module
 */

export * from "./tolerance.ts";
export * from "./assert_close.ts";
export * from "./gradcheck.ts";
export * from "./gpu.ts";
export * from "./check_op.ts";
