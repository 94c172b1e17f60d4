/**
 * Training configuration: the schema (one table per section), YAML loading
 * with `--set` overrides and validation, and the resolved `config.yaml`.
 *
 * @module
 */

export * from "./schema.ts";
export * from "./key_spec.ts";
export * from "./parse.ts";
export * from "./resolved_yaml.ts";
export * from "./run_location.ts";
export * from "./reference_table.ts";
export { closestMatch, damerauLevenshtein } from "./levenshtein.ts";
export * from "./dialects/mod.ts";
