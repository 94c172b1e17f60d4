/**
 * Recipes by name: each builds a {@link TrainingTask} from a configuration.
 * A recipe that is not built yet stops with a clear error, never a stand-in.
 *
 * @module
 */

import { type Config, type Recipe, RECIPES } from "../config/schema.ts";
import type { TrainingTask } from "../loop.ts";
import type { Collective } from "../distributed/collective.ts";
import { biencoderTask } from "./biencoder.ts";
import { crossencoderTask } from "./crossencoder.ts";
import { blockrankTask } from "./blockrank.ts";
import { sftTask } from "./sft.ts";
import { listwiseTask } from "./listwise.ts";

export * from "./biencoder.ts";
export * from "./crossencoder.ts";
export * from "./distill.ts";
export * from "./top_k.ts";
export * from "./blockrank.ts";
export * from "./sft.ts";
export * from "./neftune.ts";
export * from "./listwise.ts";
export * from "./model_setup.ts";
export * from "./metrics.ts";

/** A task plus the resources it holds. */
export type BuiltTask = TrainingTask & { dispose(): void };

/** Options every recipe builder accepts. */
export interface BuildOptions {
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
  /**
   * The ranks of a data-parallel run, for recipes that gather across them
   * (bi-encoder negatives, sharded evaluation); absent in one process.
   */
  distributed?: Collective;
}

const BUILDERS: Partial<
  Record<Recipe, (config: Config, options: BuildOptions) => Promise<BuiltTask>>
> = {
  biencoder: (config, options) => biencoderTask(config, options),
  crossencoder: (config, options) => crossencoderTask(config, options),
  blockrank: (config, options) => blockrankTask(config, options),
  sft: (config, options) => sftTask(config, options),
  listwise: (config, options) => listwiseTask(config, options),
};

/** Recipes that can train today. */
export function builtRecipes(): Recipe[] {
  return Object.keys(BUILDERS) as Recipe[];
}

/**
 * Every recipe `deno task train` runs, in the schema's order: the
 * {@link builtRecipes} plus `distill`, which trains two phases of the
 * bi-encoder machinery through `trainDistill` rather than one task.
 */
export function trainableRecipes(): Recipe[] {
  const runnable = new Set<string>([...builtRecipes(), "distill"]);
  return RECIPES.filter((r) => runnable.has(r));
}

/** Builds the task of `config.recipe`; throws "recipe X is not built yet" for the others. */
export function buildTask(config: Config, options: BuildOptions = {}): Promise<BuiltTask> {
  const builder = BUILDERS[config.recipe];
  if (!builder) {
    throw new Error(
      `recipe ${config.recipe} is not built yet (available: ${builtRecipes().join(", ")})`,
    );
  }
  return builder(config, options);
}
