/**
 * Checks that involve more than one key (a value can be valid on its own and
 * still make no sense with another). Each rule names the keys it reads; a
 * problem is reported at the first of them that the user wrote.
 *
 * @module
 */

import { InputError, type InputLocation } from "@irforge/data/input-error";
import { type Config, PHASE_SECTIONS, RECIPES, type TrainingConfig } from "./schema.ts";
import { RECIPE_DEFINITIONS } from "../recipes/recipe.ts";

/** A rule over the whole configuration. */
interface ConfigRule {
  /** Keys the rule reads ("section.key"); the problem is shown at the first one set. */
  keys: string[];
  /** What is wrong, or `undefined` when the rule holds. */
  problem(config: Config): string | undefined;
}

/** A rule over one effective training section (training, phase1 or phase2). */
interface TrainingRule {
  /** Training keys the rule reads. */
  keys: (keyof TrainingConfig)[];
  /** What is wrong, or `undefined` when the rule holds. */
  problem(training: TrainingConfig): string | undefined;
}

const configRules: ConfigRule[] = [
  {
    keys: ["model.load_in_4bit", "model.use_lora"],
    problem: (c) =>
      c.model.load_in_4bit && !c.model.use_lora
        ? "load_in_4bit (QLoRA) needs use_lora: true: 4-bit base weights are frozen"
        : undefined,
  },
  {
    keys: ["model.attn_implementation", "model.use_blockrank"],
    problem: (c) =>
      c.model.attn_implementation === "blockrank" && !c.model.use_blockrank
        ? 'attn_implementation "blockrank" needs model.use_blockrank: true'
        : undefined,
  },
  {
    keys: ["training.use_aux_loss", "model.use_blockrank"],
    problem: (c) =>
      c.training.use_aux_loss && !c.model.use_blockrank
        ? "use_aux_loss (BlockRank attention loss) needs model.use_blockrank: true"
        : undefined,
  },
  {
    keys: ["model.matryoshka_dims", "model.projection_dim"],
    problem: (c) => {
      const limit = c.model.projection_dim;
      const tooBig = limit === null ? [] : c.model.matryoshka_dims.filter((d) => d > limit);
      return tooBig.length > 0
        ? `matryoshka_dims ${tooBig.join(", ")} exceed projection_dim ${limit}`
        : undefined;
    },
  },
  {
    keys: ["data.stride", "data.window_size"],
    problem: (c) =>
      c.data.stride > c.data.window_size
        ? `stride ${c.data.stride} is larger than window_size ${c.data.window_size}: ` +
          "passages between windows would never be ranked"
        : undefined,
  },
  {
    keys: ["data.min_score", "data.max_score"],
    problem: (c) =>
      c.data.min_score !== null && c.data.max_score !== null && c.data.min_score > c.data.max_score
        ? `min_score ${c.data.min_score} is larger than max_score ${c.data.max_score}`
        : undefined,
  },
  {
    keys: ["data.negative_source", "data.run_path"],
    problem: (c) =>
      c.data.negative_source === "run" && c.data.run_path === null
        ? 'negative_source "run" needs data.run_path (the run that supplies negatives)'
        : undefined,
  },
  {
    keys: ["data.negative_source", "data.mined_negatives_path"],
    problem: (c) =>
      c.data.negative_source === "mined" && c.data.mined_negatives_path === null
        ? 'negative_source "mined" needs data.mined_negatives_path (the file deno task mine wrote)'
        : undefined,
  },
  {
    keys: ["training.eval_strategy", "data.eval_data_path", "data.train_test_split"],
    problem: (c) =>
      c.training.eval_strategy !== "no" && c.data.eval_data_path === null &&
        c.data.eval_qrels_path === null && c.data.train_test_split === 0
        ? `eval_strategy "${c.training.eval_strategy}" needs evaluation data: ` +
          "data.eval_data_path, data.eval_qrels_path or data.train_test_split > 0"
        : undefined,
  },
  {
    keys: ["training.skip_phase1", "training.skip_phase2"],
    problem: (c) => {
      if (!c.training.skip_phase1 && !c.training.skip_phase2) return undefined;
      if (RECIPE_DEFINITIONS[c.recipe].training.kind === "phases") return undefined;
      const phased = RECIPES.filter((r) => RECIPE_DEFINITIONS[r].training.kind === "phases");
      return `skip_phase1/skip_phase2 only apply to recipe ${
        phased.map((r) => `"${r}"`).join(", ")
      }`;
    },
  },
];

const trainingRules: TrainingRule[] = [
  {
    keys: ["bf16"],
    problem: (t) =>
      t.bf16
        ? "bf16 is not supported: WebGPU has no bf16 arithmetic; set fp16: true for mixed precision"
        : undefined,
  },
  {
    keys: ["warmup_ratio", "warmup_steps"],
    problem: (t) =>
      t.warmup_ratio > 0 && t.warmup_steps > 0
        ? `set warmup_ratio (${t.warmup_ratio}) or warmup_steps (${t.warmup_steps}), not both`
        : undefined,
  },
  {
    keys: ["lr_scheduler_type", "warmup_steps", "warmup_ratio"],
    problem: (t) =>
      t.lr_scheduler_type === "constant" && (t.warmup_ratio > 0 || t.warmup_steps > 0)
        ? 'lr_scheduler_type "constant" ignores warm-up; use "constant_with_warmup"'
        : undefined,
  },
  {
    keys: ["max_steps", "num_train_epochs"],
    problem: (t) =>
      t.max_steps <= 0 && t.num_train_epochs <= 0
        ? "nothing to train: set max_steps > 0 or num_train_epochs > 0"
        : undefined,
  },
  {
    keys: ["metric_for_best_model", "eval_strategy"],
    problem: (t) =>
      t.metric_for_best_model !== null && t.eval_strategy === "no"
        ? `metric_for_best_model "${t.metric_for_best_model}" needs eval_strategy steps or epoch`
        : undefined,
  },
  {
    keys: ["metric_for_best_model", "save_strategy", "eval_strategy"],
    problem: (t) =>
      t.metric_for_best_model !== null && t.eval_strategy !== "no" &&
        t.save_strategy !== "no" && t.save_strategy !== t.eval_strategy
        ? `metric_for_best_model needs save_strategy to match eval_strategy ` +
          `("${t.save_strategy}" vs "${t.eval_strategy}") so the best step has a checkpoint`
        : undefined,
  },
  {
    keys: ["metric_for_best_model", "save_steps", "eval_steps"],
    problem: (t) => {
      if (t.metric_for_best_model === null || t.save_strategy !== "steps") return undefined;
      if (t.eval_strategy !== "steps") return undefined;
      const every = t.eval_steps ?? t.logging_steps;
      return t.save_steps % every !== 0
        ? `metric_for_best_model needs save_steps (${t.save_steps}) to be a multiple of ` +
          `eval_steps (${every}) so the best step has a checkpoint`
        : undefined;
    },
  },
  {
    keys: ["greater_is_better", "metric_for_best_model"],
    problem: (t) =>
      t.greater_is_better !== null && t.metric_for_best_model === null
        ? "greater_is_better has no effect without metric_for_best_model"
        : undefined,
  },
];

/**
 * Every cross-field problem in `config`.
 *
 * @param locate Where the user wrote a key ("section.key"), for messages.
 */
export function crossFieldProblems(
  config: Config,
  locate: (path: string) => InputLocation,
): InputError[] {
  const problems: InputError[] = [];
  const at = (keys: string[]): InputLocation => {
    for (const key of keys) {
      const where = locate(key);
      if (where.line !== undefined || where.file.startsWith("--set")) return where;
    }
    return locate(keys[0]!);
  };
  for (const rule of [...configRules, ...RECIPE_DEFINITIONS[config.recipe].checks]) {
    const problem = rule.problem(config);
    if (problem) problems.push(new InputError(at(rule.keys), problem));
  }
  const sections: [string, TrainingConfig | null][] = [
    ["training", config.training],
    ...PHASE_SECTIONS.map((p) => [p, config[p]] as [string, TrainingConfig | null]),
  ];
  for (const [section, training] of sections) {
    if (training === null) continue;
    for (const rule of trainingRules) {
      const problem = rule.problem(training);
      if (!problem) continue;
      // A phase inherits from training: only report what the phase itself changed.
      if (section !== "training" && rule.problem(config.training) === problem) continue;
      const keys = rule.keys.flatMap((k) =>
        section === "training" ? [`training.${k}`] : [`${section}.${k}`, `training.${k}`]
      );
      problems.push(
        new InputError(at(keys), section === "training" ? problem : `${section}: ${problem}`),
      );
    }
  }
  for (const alternatives of RECIPE_DEFINITIONS[config.recipe].requirements) {
    const isSet = (path: string) => {
      const [section, key] = path.split(".") as ["model" | "data", string];
      return (config[section] as Record<string, unknown>)[key] !== null;
    };
    if (alternatives.some((keys) => keys.every(isSet))) continue;
    const wanted = alternatives.map((keys) => keys.join(" + ")).join(", or ");
    const recipeWhere = locate("recipe");
    const missing = alternatives[0]!.find((k) => !isSet(k))!;
    problems.push(
      new InputError(
        { ...recipeWhere, field: missing },
        `recipe "${config.recipe}" needs ${wanted}`,
      ),
    );
  }
  return problems;
}
