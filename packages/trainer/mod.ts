/**
 * `@irforge/trainer`: configuration, the training loop, recipes, the run
 * directory, schedules, RNG and progress reporting.
 *
 * @module
 */

export * from "./config/mod.ts";
export * from "./schedule.ts";
export * from "./run_dir.ts";
export * from "./output_dir_error.ts";
export * from "./rng.ts";
export * from "./progress.ts";
export * from "./eval_progress.ts";
export * from "./loop.ts";
export * from "./recipes/mod.ts";
export * from "./default/mod.ts";
