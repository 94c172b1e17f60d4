/**
 * `@irforge/tensor/lab`: the kernel lab — design counts, the wave estimate,
 * trustworthy timings and the registry of kernel families that
 * `bench/kernels.ts` walks. Importing it registers every family of the
 * package. Also re-exports the runtime for benchmark tooling (the rest of
 * the workspace uses the public API of `@irforge/tensor` only).
 *
 * @module
 */

export {
  type AdapterForWave,
  estimateWave,
  type KernelCounts,
  type WaveEstimate,
  waves,
} from "./counts.ts";
export {
  type LabCase,
  labFamilies,
  type LabFamily,
  type LabRun,
  type LabScale,
  registerLabFamily,
  streamingCounts,
} from "./family.ts";
export {
  CROSS_CHECK_MS,
  DISAGREEMENT_LIMIT,
  formatTiming,
  median,
  MIN_REPS,
  timeRecorded,
  type Timing,
  type TimingOptions,
} from "./timing.ts";
export { ATTENTION_LAB, countVisiblePairs } from "./families/attention.ts";
export { layerShapes, MATMUL_LAB, MATMUL_PROBLEMS, matmulCounts } from "./families/matmul.ts";
export { FUSED_LAB } from "./families/fused.ts";
export { ELEMENTWISE_LAB, OPTIMIZER_LAB, ROW_SCORES_LAB, ROWS_LAB } from "./families/streaming.ts";
export { getRuntime, Runtime } from "../runtime.ts";
export type { BufferPool } from "../pool.ts";
