/**
 * Training configuration: the schema (one table per section), YAML loading
 * with `--set` overrides and validation, other projects' configuration
 * dialects, and the resolved `config.yaml`.
 *
 * @example Load a configuration with an override
 * ```ts ignore
 * import { loadConfig } from "@irforge/trainer/config";
 *
 * const config = await loadConfig("examples/biencoder-scifact.yaml", ["training.max_steps=2"]);
 * console.log(config.recipe, config.training.max_steps);
 * ```
 *
 * @module
 */

export {
  type Config,
  type DataConfig,
  dataKeys,
  LOSSES,
  type ModelConfig,
  modelKeys,
  PHASE_SECTIONS,
  type Recipe,
  RECIPES,
  SCHEDULER_TYPES,
  type SchedulerType,
  type SectionName,
  SECTIONS,
  type SectionValues,
  TOP_LEVEL_KEYS,
  type TrainingConfig,
  trainingKeys,
} from "./schema.ts";
export { type KeyKind, type KeySpec } from "./key_spec.ts";
export { ConfigError, loadConfig, type MappedEntry, parseConfig } from "./parse.ts";
export { resolvedConfigYaml } from "./resolved_yaml.ts";
export { runDirectory, runName } from "./run_location.ts";
export {
  type DialectConfig,
  FILE_DIALECTS,
  type FileDialect,
  FLAG_DIALECTS,
  type FlagDialect,
  flagsConfig,
  loadAnyConfig,
  type LoadAnyOptions,
  parseAnyConfig,
  printConfig,
  splitUpstreamArgs,
} from "./dialects/mod.ts";
