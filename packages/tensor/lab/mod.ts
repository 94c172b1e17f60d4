/**
 * `@irforge/tensor/lab`: the kernel lab — design counts, the wave estimate,
 * trustworthy timings and the registry of kernel families that
 * `bench/kernels.ts` walks. Importing it registers every family of the
 * package. Also re-exports the runtime for benchmark tooling (the rest of
 * the workspace uses the public API of `@irforge/tensor` only).
 *
 * @module
 */

export * from "./counts.ts";
export * from "./family.ts";
export * from "./timing.ts";
export { ATTENTION_LAB, countVisiblePairs } from "./families/attention.ts";
export { layerShapes, MATMUL_LAB, MATMUL_PROBLEMS, matmulCounts } from "./families/matmul.ts";
export { FUSED_LAB } from "./families/fused.ts";
export { ELEMENTWISE_LAB, OPTIMIZER_LAB, ROW_SCORES_LAB, ROWS_LAB } from "./families/streaming.ts";
export { getRuntime, Runtime } from "../runtime.ts";
