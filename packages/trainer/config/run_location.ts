/**
 * Where a configuration's run goes: its name and its directory.
 *
 * @module
 */

import { join } from "node:path";
import type { Config } from "./schema.ts";

/** The run's name: `training.run_name`, else the top-level `name`, else the recipe. */
export function runName(config: Config): string {
  return config.training.run_name ?? config.name ?? config.recipe;
}

/**
 * The run directory the configuration asks for: `training.output_dir`, else
 * `<runsRoot>/<runName>`. `RunDir.create` appends `-2`, `-3` if it exists.
 */
export function runDirectory(config: Config, runsRoot = "runs"): string {
  return config.training.output_dir ?? join(runsRoot, runName(config));
}
