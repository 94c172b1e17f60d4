/**
 * The irforge training dashboard: a hono app that shows the runs written in
 * the layout of `docs/run-layout.md` — runs list, live metric charts,
 * configuration, checkpoints, evaluations and a compare view — plus a JSON
 * API under `/api` (see `README.md`).
 *
 * ```ts
 * import { createApp } from "@irforge/dashboard";
 * Deno.serve({ hostname: "127.0.0.1", port: 8787 }, createApp("runs").fetch);
 * ```
 *
 * @module
 */

export { createApp, type DashboardApp, type DashboardOptions } from "./app.ts";
export { HttpError } from "./http_error.ts";
export {
  formatCursor,
  type MalformedLine,
  type MetricRecord,
  type MetricsChunk,
  type MetricsCursor,
  parseCursor,
  parseMetricLine,
  type PendingLine,
  readMetrics,
  type ReadMetricsOptions,
} from "./metrics.ts";
export {
  type BestMetric,
  type Checkpoint,
  type CheckpointFile,
  type EvalProblem,
  type Evaluation,
  listCheckpoints,
  listEvaluations,
  listRuns,
  readConfig,
  readEvaluation,
  readRunSummary,
  readRunTree,
  RUN_STATUSES,
  type RunConfig,
  type RunSummary,
} from "./runs.ts";
export {
  assertRunId,
  assertRunName,
  holdsRunFiles,
  isValidRunId,
  isValidRunName,
  MAX_RUN_ID_PARTS,
  RESERVED_CHILD_NAMES,
  resolveInside,
  resolveInsideOrNull,
  resolveRunDir,
  RUN_FILES,
  RUN_NAME_PATTERN,
  runSegments,
} from "./safe_paths.ts";
