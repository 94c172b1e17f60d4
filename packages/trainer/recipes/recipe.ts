/**
 * Every recipe in one table: what it needs in the configuration, the checks
 * that only concern it, and how it trains (one task the training loop runs,
 * or phases it runs itself). `RECIPE_DEFINITIONS` is a
 * `Record<Recipe, RecipeDefinition>`, so a recipe named in
 * `config/schema.ts` `RECIPES` without an entry here does not compile.
 *
 * Adding a recipe: one file that builds its {@link TrainingTask} (data,
 * prompt layout, micro-batch loss, evaluation; the model through a
 * `ModelSession`), its name in `RECIPES`, and one entry here. See
 * "Adding a recipe" in the trainer README.
 *
 * @module
 */

import { type Config, type Recipe, RECIPES } from "../config/schema.ts";
import type { TrainingTask, TrainResult } from "../loop.ts";
import type { Collective } from "../distributed/collective.ts";
import type { DataParallel } from "../distributed/data_parallel.ts";
import { biencoderTask } from "./biencoder.ts";
import { blockrankTask } from "./blockrank.ts";
import { crossencoderTask } from "./crossencoder.ts";
import { trainDistill } from "./distill_run.ts";
import { listwiseTask } from "./listwise.ts";
import { sftTask } from "./sft.ts";

/** A task plus the resources it holds. */
export type BuiltTask = TrainingTask & {
  /** Frees the model and everything else the task holds. */
  dispose(): void;
};

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

/**
 * Keys a recipe cannot run without ("section.key"). Each entry is a list of
 * alternatives; one alternative is satisfied when all its keys are set
 * (non-null).
 */
export type RecipeRequirements = string[][][];

/** A check of a recipe's configuration that involves more than one key. */
export interface RecipeCheck {
  /** Keys the check reads ("section.key"); the problem is shown at the first one set. */
  keys: string[];
  /** What is wrong, or `undefined` when the check holds. */
  problem(config: Config): string | undefined;
}

/** What a recipe that trains in phases gets to run. */
export interface PhasedRunOptions {
  /** The resolved configuration. */
  config: Config;
  /** A run directory to continue, if any. */
  resume?: string | null;
  /** Output lines. */
  log?: (line: string) => void;
  /** Evaluate before each phase's first step. */
  evaluateFirst?: boolean;
  /** The ranks of a data-parallel run (recipes whose `dataParallel` is true); absent in one process. */
  distributed?: DataParallel;
  /** Progress bar (default true; under data parallelism only rank 0 shows one). */
  progress?: boolean;
}

/** What a phased run reports: its directory and how it ended. */
export interface PhasedRunResult {
  /** The run directory (each phase trains in a subdirectory). */
  runPath: string;
  /** `finished` when every phase that ran finished; else the first other status. */
  status: TrainResult["status"];
  /**
   * The result of the last phase trained in this run (null: none trained,
   * e.g. every phase had finished before a resume); data-parallel ranks
   * leave the job together on it.
   */
  last: TrainResult | null;
}

/** How a recipe trains. */
export type RecipeTraining =
  | {
    /** One task, trained by `train` (`deno task train` builds it, then trains it). */
    kind: "task";
    /** Builds the task of `config`. */
    build(config: Config, options: BuildOptions): Promise<BuiltTask>;
  }
  | {
    /** Several runs (phases) the recipe runs itself into one run directory. */
    kind: "phases";
    /** Trains every phase of `options.config`. */
    run(options: PhasedRunOptions): Promise<PhasedRunResult>;
  };

/** Everything that makes a recipe, in one place. */
export interface RecipeDefinition {
  /** One line for `deno task train --help`. */
  description: string;
  /** Keys the recipe cannot run without (see {@link RecipeRequirements}). */
  requirements: RecipeRequirements;
  /** Checks over several keys that only this recipe has. */
  checks: RecipeCheck[];
  /** Whether the recipe trains on several data-parallel ranks (`--nproc`). */
  dataParallel: boolean;
  /** How it trains. */
  training: RecipeTraining;
}

/** The recipes, by name. */
export const RECIPE_DEFINITIONS: Record<Recipe, RecipeDefinition> = {
  blockrank: {
    description: "BlockRank in-context ranker: the LM names the relevant document (attention loss)",
    requirements: [[["model.model_name_or_path"]], [["data.data_path"]]],
    checks: [],
    dataParallel: true,
    training: { kind: "task", build: (config, options) => blockrankTask(config, options) },
  },
  biencoder: {
    description: "Trove-style dense retriever: pooled embeddings, contrastive loss with negatives",
    requirements: [
      [["model.model_name_or_path"]],
      [["data.data_path"], ["data.queries_path", "data.corpus_path", "data.qrels_path"]],
    ],
    checks: [],
    dataParallel: true,
    training: { kind: "task", build: (config, options) => biencoderTask(config, options) },
  },
  listwise: {
    description: "RankLLM-style listwise reranker: orders a window of candidates by identifier",
    requirements: [[["model.model_name_or_path"]], [["data.data_path"]]],
    checks: [],
    dataParallel: true,
    training: { kind: "task", build: (config, options) => listwiseTask(config, options) },
  },
  crossencoder: {
    description: "pointwise reranker: a scoring head over each (query, passage) pair",
    requirements: [
      [["model.model_name_or_path"]],
      [["data.data_path"], [
        "data.queries_path",
        "data.corpus_path",
        "data.qrels_path",
        "data.run_path",
      ]],
    ],
    checks: [],
    dataParallel: true,
    training: { kind: "task", build: (config, options) => crossencoderTask(config, options) },
  },
  distill: {
    description: "embedding distillation: phase 1 regresses onto a teacher, phase 2 contrastive",
    requirements: [
      [["model.model_name_or_path"]],
      [["data.data_path"]],
      [["model.teacher_model_name_or_path"], ["model.precomputed_embeddings_dir"], [
        "data.run_path",
      ]],
    ],
    checks: [{
      keys: ["training.skip_phase1", "training.skip_phase2"],
      problem: (c) =>
        c.training.skip_phase1 && c.training.skip_phase2
          ? "skip_phase1 and skip_phase2 leave nothing to train"
          : undefined,
    }, {
      keys: ["model.precomputed_embeddings_dir", "model.teacher_model_name_or_path"],
      problem: (c) =>
        c.model.precomputed_embeddings_dir !== null && c.model.teacher_model_name_or_path !== null
          ? "precomputed_embeddings_dir and teacher_model_name_or_path both give the teacher; " +
            "set one"
          : undefined,
    }],
    dataParallel: true,
    training: {
      kind: "phases",
      run: async (options) => {
        const result = await trainDistill(options);
        return { ...result, last: result.phase2 ?? result.phase1 };
      },
    },
  },
  sft: {
    description: "supervised fine-tuning (qa-expert): causal LM loss on the assistant turns",
    requirements: [[["model.model_name_or_path"]], [["data.data_path"]]],
    checks: [],
    dataParallel: true,
    training: { kind: "task", build: (config, options) => sftTask(config, options) },
  },
};

/** Recipes that build one task for `train` (every recipe but the phased ones). */
export function builtRecipes(): Recipe[] {
  return recipeNames().filter((r) => RECIPE_DEFINITIONS[r].training.kind === "task");
}

/** Every recipe `deno task train` runs, in the schema's order. */
export function trainableRecipes(): Recipe[] {
  return recipeNames();
}

/**
 * Builds the task of `config.recipe`. A recipe that trains in phases has no
 * single task: it throws "recipe X is not built yet as one task" at once.
 */
export function buildTask(config: Config, options: BuildOptions = {}): Promise<BuiltTask> {
  const training = RECIPE_DEFINITIONS[config.recipe].training;
  if (training.kind !== "task") {
    throw new Error(
      `recipe ${config.recipe} is not built yet as one task: it trains in phases ` +
        `(one task: ${builtRecipes().join(", ")})`,
    );
  }
  return training.build(config, options);
}

function recipeNames(): Recipe[] {
  return [...RECIPES];
}
