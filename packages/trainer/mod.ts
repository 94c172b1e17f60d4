/**
 * `@irforge/trainer`: configuration, the recipe table and the recipes'
 * training tasks, the training loop and the embedded default run. Schedules,
 * the run directory, the RNG, progress, resumption, inference and data
 * parallelism have their own entry points (`@irforge/trainer/schedule`,
 * `/run-dir`, `/rng`, `/progress`, `/resume`, `/inference`, `/distributed`, …).
 *
 * @example Train the recipe a configuration names
 * ```ts
 * import { buildTask, loadConfig, train } from "@irforge/trainer";
 *
 * export async function trainFile(path: string): Promise<string> {
 *   const config = await loadConfig(path, ["training.max_steps=2"]);
 *   const task = await buildTask(config);
 *   try {
 *     const result = await train({ config, task });
 *     return `${result.status}: ${result.runPath}`;
 *   } finally {
 *     task.dispose();
 *   }
 * }
 * ```
 *
 * @module
 */

export {
  type Config,
  ConfigError,
  type DataConfig,
  dataKeys,
  type DialectConfig,
  flagsConfig,
  type KeySpec,
  loadAnyConfig,
  type LoadAnyOptions,
  loadConfig,
  type MappedEntry,
  type ModelConfig,
  modelKeys,
  parseAnyConfig,
  parseConfig,
  PHASE_SECTIONS,
  printConfig,
  type Recipe,
  RECIPES,
  resolvedConfigYaml,
  runDirectory,
  runName,
  SECTIONS,
  type SectionValues,
  splitUpstreamArgs,
  type TrainingConfig,
  trainingKeys,
} from "./config/mod.ts";
export {
  DivergenceError,
  type EvalOutcome,
  type MicroBatchResult,
  train,
  type TrainingTask,
  type TrainOptions,
  type TrainResult,
} from "./loop.ts";
export {
  type BuildOptions,
  buildTask,
  builtRecipes,
  type BuiltTask,
  countTargets,
  countTokens,
  type DistillOptions,
  type DistillResult,
  distillTasks,
  type LoadedModel,
  loadModel,
  microBatchIndices,
  ModelSession,
  type PhasedRunOptions,
  type PhasedRunResult,
  RECIPE_DEFINITIONS,
  type RecipeCheck,
  type RecipeDefinition,
  type RecipeRequirements,
  type RecipeTraining,
  trainableRecipes,
  trainDistill,
  type TrainDistillOptions,
  withModelSession,
} from "./recipes/mod.ts";
export { DEFAULT_CONFIG_PATH, DEFAULT_DIR, defaultConfig } from "./default/mod.ts";
export {
  EvalProgress,
  evalProgress,
  type EvalProgressOptions,
  phasedEvalProgress,
} from "./eval_progress.ts";
export { outputDirError } from "./output_dir_error.ts";
export type { KeyKind } from "./config/key_spec.ts";
export type {
  BestMetric,
  CheckpointInfo,
  DataPosition,
  EvalResult,
  MetricsRecord,
  RunDevice,
  RunDir,
  RunStatus,
  RunSummary,
  TrainerState,
} from "./run_dir.ts";
export type { Rng, RngState } from "./rng.ts";
export type { DistillData, DistillTasks, IdText, Student, Teacher } from "./recipes/distill.ts";
export type { Collective } from "./distributed/collective.ts";
export type {
  DataParallel,
  StepContribution,
  StepTotals,
  TrainingTaskReduction,
} from "./distributed/data_parallel.ts";
export type { FollowerRun, RunWriter } from "./distributed/follower_run.ts";
