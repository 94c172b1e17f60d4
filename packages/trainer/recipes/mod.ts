/**
 * The recipes: the table that defines each one ({@link RECIPE_DEFINITIONS}),
 * the builders of their training tasks, and what a new recipe builds on
 * ({@link ModelSession}, {@link loadModel}).
 *
 * @example Build the task of a configuration and train it
 * ```ts ignore
 * import { buildTask, loadConfig, train } from "@irforge/trainer";
 *
 * const config = await loadConfig("examples/biencoder-scifact.yaml");
 * const task = await buildTask(config);
 * try {
 *   const result = await train({ config, task });
 *   console.log(result.status, result.runPath);
 * } finally {
 *   task.dispose();
 * }
 * ```
 *
 * @module
 */

export {
  type BuildOptions,
  buildTask,
  builtRecipes,
  type BuiltTask,
  type PhasedRunOptions,
  type PhasedRunResult,
  RECIPE_DEFINITIONS,
  type RecipeCheck,
  type RecipeDefinition,
  type RecipeRequirements,
  type RecipeTraining,
  trainableRecipes,
} from "./recipe.ts";
export {
  countTargets,
  countTokens,
  microBatchIndices,
  ModelSession,
  withModelSession,
} from "./model_session.ts";
export { type LoadedModel, loadModel, RANDOM_INIT_PREFIX } from "./model_setup.ts";
export { readRetrievalData, type RetrievalData } from "./retrieval_data.ts";
export {
  type BiencoderOptions,
  type BiencoderTask,
  biencoderTask,
  embedTexts,
  type EmbedTextsOptions,
} from "./biencoder.ts";
export {
  type CrossencoderOptions,
  type CrossencoderTask,
  crossencoderTask,
  SCORE_HEAD,
} from "./crossencoder.ts";
export {
  type BlockRankData,
  type BlockRankTask,
  blockrankTask,
  type BlockRankTaskOptions,
} from "./blockrank.ts";
export {
  type ListwiseData,
  type ListwiseItem,
  type ListwiseTask,
  listwiseTask,
  type ListwiseTaskOptions,
} from "./listwise.ts";
export type { RankLlmConversation } from "./rankllm_conversations.ts";
export { type SftOptions, type SftTask, sftTask } from "./sft.ts";
export {
  type DistillData,
  type DistillOptions,
  type DistillTasks,
  distillTasks,
  type IdText,
  type Student,
  type Teacher,
} from "./distill.ts";
export { type DistillResult, trainDistill, type TrainDistillOptions } from "./distill_run.ts";
