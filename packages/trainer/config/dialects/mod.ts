/**
 * Configuration dialects: other projects' configuration files and command
 * lines, read as those projects read them and turned into an irforge
 * {@linkcode Config}. A file's dialect is recognised from its shape (an
 * irforge file has `recipe`; a BlockRank file BlockRank's keys; a
 * distill-for-retrieval file `model.teacher`/`paths`/`phase1`) or named with
 * a top-level `dialect:` key or `--dialect`.
 *
 * Every upstream key maps to an irforge key, is noted in one log line (what
 * irforge does instead), or stops the run with a sentence; none is dropped.
 * {@linkcode printConfig} shows the mapping and the resolved configuration.
 *
 * @example Load any supported file
 * ```ts ignore
 * import { loadAnyConfig, printConfig } from "@irforge/trainer";
 * const loaded = await loadAnyConfig("my_config.yaml");
 * console.log(printConfig(loaded));
 * ```
 *
 * @module
 */

import { basename, extname } from "node:path";
import { InputError } from "@irforge/data/input-error";
import { ConfigError, parseConfig, parseMappedConfig } from "../parse.ts";
import { resolvedConfigYaml } from "../resolved_yaml.ts";
import type { Config } from "../schema.ts";
import { looksLikeBlockRank, translateBlockRank } from "./blockrank.ts";
import { looksLikeDistill, translateDistill } from "./distill.ts";
import { translateFlags } from "./hf_flags.ts";
import { readUpstreamYaml, type Translation, type UpstreamDocument } from "./upstream_yaml.ts";

export { BLOCKRANK_ATTENTION, looksLikeBlockRank, translateBlockRank } from "./blockrank.ts";
export { distillExperimentName, looksLikeDistill, translateDistill } from "./distill.ts";
export { HF_TRAINING_ARGUMENTS, mapTrainingArgument } from "./hf_training_args.ts";
export {
  FLAG_DIALECTS,
  type FlagDialect,
  parseUpstreamFlags,
  splitUpstreamArgs,
  translateFlags,
} from "./hf_flags.ts";
export { readUpstreamYaml, Translation, type UpstreamDocument } from "./upstream_yaml.ts";

/** Dialects of configuration files. */
export const FILE_DIALECTS = ["irforge", "blockrank", "distill"] as const;

/** A configuration file dialect. */
export type FileDialect = typeof FILE_DIALECTS[number];

/** A configuration read from any dialect. */
export interface DialectConfig {
  /** The resolved irforge configuration. */
  config: Config;
  /** The dialect it was read in (a file dialect or a command-line one). */
  dialect: string;
  /** One line per upstream key whose meaning differs (log them before training). */
  notes: string[];
  /** `upstream key → irforge key` lines (empty for irforge files). */
  mapping: string[];
}

/** Which dialect `doc` is written in: its `dialect:` key, else its shape. */
export function detectDialect(doc: UpstreamDocument, file: string): FileDialect {
  const named = doc.get("dialect");
  if (named !== undefined) {
    if (!(FILE_DIALECTS as readonly unknown[]).includes(named.value)) {
      throw new InputError(
        named.where,
        `unknown dialect ${JSON.stringify(named.value)}: expected one of ${
          FILE_DIALECTS.join(", ")
        }`,
      );
    }
    return named.value as FileDialect;
  }
  if (doc.has("recipe")) return "irforge";
  if (looksLikeDistill(doc)) return "distill";
  if (looksLikeBlockRank(doc)) return "blockrank";
  throw new InputError(
    { file },
    "cannot tell which configuration this is: an irforge file needs a top-level recipe; " +
      "a BlockRank or distill-for-retrieval file is recognised by its keys " +
      "(or name it with dialect: / --dialect)",
  );
}

/** Options of {@linkcode loadAnyConfig}. */
export interface LoadAnyOptions {
  /** `--set section.key=value` overrides (irforge keys), applied after the translation. */
  sets?: string[];
  /** The dialect, when the file's shape should not decide (`--dialect`). */
  dialect?: string;
}

/**
 * Reads a configuration file in any file dialect; see
 * {@linkcode parseAnyConfig}.
 */
export async function loadAnyConfig(
  path: string,
  options: LoadAnyOptions = {},
): Promise<DialectConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError({ file: path }, `cannot read the configuration file: ${reason}`);
  }
  return parseAnyConfig(text, path, options);
}

/**
 * Parses configuration text in any file dialect into an irforge
 * configuration, with the notes and the key mapping.
 *
 * @throws {ConfigError} listing every refused key and every invalid value.
 */
export function parseAnyConfig(
  text: string,
  file: string,
  options: LoadAnyOptions = {},
): DialectConfig {
  const sets = options.sets ?? [];
  let dialect: FileDialect;
  let doc: UpstreamDocument;
  try {
    doc = readUpstreamYaml(text, file);
    if (options.dialect !== undefined) {
      if (!(FILE_DIALECTS as readonly string[]).includes(options.dialect)) {
        throw new InputError(
          { file: "--dialect" },
          `unknown dialect "${options.dialect}": expected one of ${FILE_DIALECTS.join(", ")}`,
        );
      }
      dialect = options.dialect as FileDialect;
    } else dialect = detectDialect(doc, file);
  } catch (error) {
    if (error instanceof InputError) throw new ConfigError([error]);
    throw error;
  }
  if (dialect === "irforge") {
    const named = doc.get("dialect");
    // parseConfig knows no `dialect` key; drop its line so line numbers stay right.
    const body = named?.where.line === undefined
      ? text
      : text.split("\n").map((l, i) => i + 1 === named.where.line ? "" : l).join("\n");
    return { config: parseConfig(body, file, sets), dialect, notes: [], mapping: [] };
  }
  const translation: Translation = dialect === "blockrank"
    ? translateBlockRank(doc, file)
    : translateDistill(doc, file, configName(file));
  return fromTranslation(translation, file, sets, dialect);
}

/** Validates a translation (file or command line) into a {@linkcode DialectConfig}. */
export function fromTranslation(
  translation: Translation,
  file: string,
  sets: string[],
  dialect: string,
): DialectConfig {
  const config = parseMappedConfig(translation.entries, file, sets, [...translation.problems]);
  return { config, dialect, notes: translation.notes, mapping: translation.mapping };
}

/** A config file's name without directory and extension (distill-for-retrieval's `config_name`). */
export function configName(path: string): string {
  return basename(path, extname(path));
}

/**
 * What `--print-config` shows: the mapping from the upstream keys (as YAML
 * comments) and the resolved irforge configuration, which loads back as is.
 */
export function printConfig(loaded: DialectConfig): string {
  const lines: string[] = [];
  if (loaded.dialect !== "irforge") {
    lines.push(`# Read as ${loaded.dialect}; how each key maps:`);
    for (const line of loaded.mapping) lines.push(`#   ${line}`);
  }
  lines.push(resolvedConfigYaml(loaded.config));
  return lines.join("\n");
}

/**
 * The configuration of an upstream command line (qa-expert's or RankLLM's
 * flags, split off by {@linkcode splitUpstreamArgs}), validated like a file.
 *
 * @throws {ConfigError} listing every refused flag and invalid value.
 */
export function flagsConfig(
  upstream: readonly string[],
  options: { dialect: string | null; recipe: string | null; sets?: string[] },
): DialectConfig {
  let translated;
  try {
    translated = translateFlags(upstream, options.dialect, options.recipe);
  } catch (error) {
    if (error instanceof InputError) throw new ConfigError([error]);
    throw error;
  }
  return fromTranslation(
    translated.translation,
    "command line",
    options.sets ?? [],
    translated.dialect,
  );
}
