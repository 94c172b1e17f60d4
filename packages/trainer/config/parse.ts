/**
 * Loads a YAML training configuration, applies `--set` overrides, validates
 * every key against the schema and fills in defaults. All problems are
 * collected and reported together, each naming the file, the line and the
 * key, with the closest valid key for a misspelling.
 *
 * @module
 */

import { isMap, isScalar, LineCounter, type Node, parseDocument, type YAMLMap } from "yaml";
import { formatLocation, InputError, type InputLocation } from "@irforge/data/input-error";
import { checkValue, type KeySpec } from "./key_spec.ts";
import { closestMatch } from "./levenshtein.ts";
import {
  type Config,
  type DataConfig,
  type ModelConfig,
  PHASE_SECTIONS,
  type Recipe,
  RECIPES,
  type SectionName,
  SECTIONS,
  TOP_LEVEL_KEYS,
  type TrainingConfig,
  trainingKeys,
} from "./schema.ts";
import { crossFieldProblems } from "./cross_checks.ts";
import { RECIPE_DEFINITIONS } from "../recipes/recipe.ts";

/** Whether `recipe` trains in phases (and so reads the `phase1`/`phase2` sections). */
function trainsInPhases(recipe: Recipe): boolean {
  return RECIPE_DEFINITIONS[recipe].training.kind === "phases";
}

/** Every problem found in a configuration, reported at once. */
export class ConfigError extends Error {
  /** The individual problems, in file order then `--set` order. */
  readonly problems: InputError[];

  /** Builds the error; its message lists every problem on its own line. */
  constructor(problems: InputError[]) {
    problems = sortedProblems(problems);
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`invalid configuration (${count}):\n${problems.map((p) => `  ${p.message}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** File problems first, by line; then `--set` problems in the order given. */
function sortedProblems(problems: InputError[]): InputError[] {
  const rank = (p: InputError) =>
    p.location.file.startsWith("--set ") ? Infinity : p.location.line ?? 0;
  return problems.map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p);
}

/** A value as written by the user, with where it was written. */
interface RawEntry {
  value: unknown;
  where: InputLocation;
  /** The text after `=` of a `--set`, so `--set name=123` can mean the string "123". */
  setText?: string;
}

/** The user's keys before validation: `recipe`, `name`, then sections. */
interface RawConfig {
  top: Map<string, RawEntry>;
  sections: Map<string, Map<string, RawEntry>>;
  /** Where each section itself was opened (for section-level problems). */
  sectionWhere: Map<string, InputLocation>;
}

const ALL_SECTIONS: readonly string[] = [...Object.keys(SECTIONS), ...PHASE_SECTIONS];

/** Keys of a section table (a phase section uses the training table). */
function keysOf(section: string): Record<string, KeySpec<unknown>> {
  if ((PHASE_SECTIONS as readonly string[]).includes(section)) return trainingKeys;
  return SECTIONS[section as SectionName];
}

/** Maps every accepted spelling (names and aliases) of a section's keys to its name. */
function spellings(section: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const [name, spec] of Object.entries(keysOf(section))) {
    names.set(name, name);
    for (const alias of spec.aliases ?? []) names.set(alias, name);
  }
  return names;
}

/**
 * Reads and parses a configuration file; see {@linkcode parseConfig}.
 *
 * @param path YAML file.
 * @param sets `--set section.key=value` overrides, applied after the file.
 */
export async function loadConfig(path: string, sets: string[] = []): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError({ file: path }, `cannot read the configuration file: ${reason}`);
  }
  return parseConfig(text, path, sets);
}

/**
 * Parses YAML configuration text into a fully resolved {@linkcode Config}.
 *
 * @param text YAML text.
 * @param file Name of the file, used in error messages.
 * @param sets `--set section.key=value` overrides (value parsed as a YAML scalar).
 * @throws {ConfigError} listing every unknown key, wrong type, out-of-range
 *   value, missing required key and inconsistent combination.
 */
export function parseConfig(text: string, file: string, sets: string[] = []): Config {
  const problems: InputError[] = [];
  const raw = readYaml(text, file, problems);
  // A file that is not valid YAML says nothing reliable about its keys.
  if (raw === undefined) throw new ConfigError(problems);
  return resolveRaw(raw, file, sets, problems);
}

/** One irforge key set by a translated (dialect) configuration, with where the user wrote it. */
export interface MappedEntry {
  /** `recipe`, `name`, or `section.key` (a canonical key name). */
  path: string;
  /** The value, as YAML would have read it. */
  value: unknown;
  /** Where the user wrote the upstream key (its name in `field`). */
  where: InputLocation;
}

/**
 * Validates a configuration given as irforge keys (what a dialect made of
 * another project's file) exactly as {@linkcode parseConfig} validates a
 * file: the same types, ranges, defaults and cross-field checks; problems
 * point at the user's own lines. `problems` found while translating are
 * reported together with these.
 *
 * @throws {ConfigError} listing every problem.
 */
export function parseMappedConfig(
  entries: readonly MappedEntry[],
  file: string,
  sets: string[] = [],
  problems: InputError[] = [],
): Config {
  const raw: RawConfig = { top: new Map(), sections: new Map(), sectionWhere: new Map() };
  for (const entry of entries) {
    const [section, key] = entry.path.split(".") as [string, string | undefined];
    if (key === undefined) {
      if (!(TOP_LEVEL_KEYS as readonly string[]).includes(section)) {
        throw new Error(`parseMappedConfig: "${entry.path}" is not a top-level key`);
      }
      raw.top.set(section, { value: entry.value, where: entry.where });
      continue;
    }
    if (!ALL_SECTIONS.includes(section) || !(key in keysOf(section))) {
      throw new Error(`parseMappedConfig: "${entry.path}" is not a configuration key`);
    }
    let entriesOf = raw.sections.get(section);
    if (!entriesOf) {
      raw.sections.set(section, entriesOf = new Map());
      raw.sectionWhere.set(section, entry.where);
    }
    const previous = entriesOf.get(key);
    if (previous) {
      problems.push(
        new InputError(
          entry.where,
          `sets ${entry.path}, already set by "${previous.where.field}"` +
            (previous.where.line !== undefined ? ` at line ${previous.where.line}` : ""),
        ),
      );
      continue;
    }
    entriesOf.set(key, { value: entry.value, where: entry.where });
  }
  return resolveRaw(raw, file, sets, problems);
}

function resolveRaw(raw: RawConfig, file: string, sets: string[], problems: InputError[]): Config {
  for (const set of sets) applySet(raw, set, problems);
  const config = validate(raw, file, problems);
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  const locate = (path: string) => locateKey(raw, path, file);
  problems.push(...crossFieldProblems(config, locate));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function readYaml(text: string, file: string, problems: InputError[]): RawConfig | undefined {
  const raw: RawConfig = { top: new Map(), sections: new Map(), sectionWhere: new Map() };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const line = error.linePos?.[0].line;
      const message = error.message.split("\n")[0] ?? error.message;
      problems.push(new InputError({ file, line }, `YAML syntax: ${message}`));
    }
    return undefined;
  }
  const lineOf = (node: Node | null | undefined) =>
    node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  const toJs = (node: unknown) =>
    node && typeof node === "object" && "toJS" in node
      ? (node as { toJS(doc: unknown): unknown }).toJS(doc)
      : node ?? null;

  const contents = doc.contents;
  if (contents === null) return raw;
  if (!isMap(contents)) {
    problems.push(
      new InputError({ file, line: lineOf(contents) }, "the configuration must be a YAML map"),
    );
    return undefined;
  }
  for (const pair of (contents as YAMLMap).items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const where: InputLocation = { file, line: lineOf(pair.key as Node), field: key };
    if ((TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      raw.top.set(key, { value: toJs(pair.value), where });
      continue;
    }
    if (!ALL_SECTIONS.includes(key)) {
      problems.push(new InputError(where, unknownTopLevel(key)));
      continue;
    }
    raw.sectionWhere.set(key, where);
    const section = new Map<string, RawEntry>();
    raw.sections.set(key, section);
    if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) continue;
    if (!isMap(pair.value)) {
      problems.push(new InputError(where, `section "${key}" must be a map of keys`));
      continue;
    }
    const names = spellings(key);
    for (const item of pair.value.items) {
      const written = isScalar(item.key) ? String(item.key.value) : String(item.key);
      const itemWhere: InputLocation = {
        file,
        line: lineOf(item.key as Node),
        field: `${key}.${written}`,
      };
      const name = names.get(written);
      if (name === undefined) {
        problems.push(new InputError(itemWhere, unknownKey(key, written)));
        continue;
      }
      const previous = section.get(name);
      if (previous) {
        problems.push(
          new InputError(
            itemWhere,
            `"${name}" is already set at line ${previous.where.line} (under another name)`,
          ),
        );
        continue;
      }
      section.set(name, { value: toJs(item.value), where: itemWhere });
    }
  }
  return raw;
}

function applySet(raw: RawConfig, set: string, problems: InputError[]): void {
  const where: InputLocation = { file: `--set ${set}` };
  const eq = set.indexOf("=");
  if (eq <= 0) {
    problems.push(new InputError(where, "expected section.key=value"));
    return;
  }
  const path = set.slice(0, eq).trim();
  const valueText = set.slice(eq + 1);
  const doc = parseDocument(valueText);
  if (doc.errors.length > 0) {
    problems.push(
      new InputError(where, `value is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`),
    );
    return;
  }
  const value = doc.toJS() ?? null;
  const parts = path.split(".");
  const setText = valueText.trim();
  if (parts.length === 1) {
    if ((TOP_LEVEL_KEYS as readonly string[]).includes(path)) {
      raw.top.set(path, { value, where: { ...where, field: path }, setText });
    } else if (ALL_SECTIONS.includes(path)) {
      problems.push(
        new InputError(where, `"${path}" is a section: set one key, as ${path}.key=value`),
      );
    } else {
      problems.push(new InputError(where, unknownTopLevel(path)));
    }
    return;
  }
  const [section, written] = parts as [string, string];
  if (parts.length !== 2 || !ALL_SECTIONS.includes(section)) {
    const suggestion = closestMatch(section, ALL_SECTIONS);
    problems.push(
      new InputError(
        where,
        `unknown key "${path}": expected section.key with section one of ${
          ALL_SECTIONS.join(", ")
        }${suggestion && parts.length === 2 ? `; did you mean "${suggestion}.${written}"?` : ""}`,
      ),
    );
    return;
  }
  const name = spellings(section).get(written);
  if (name === undefined) {
    problems.push(new InputError(where, unknownKey(section, written)));
    return;
  }
  let entries = raw.sections.get(section);
  if (!entries) raw.sections.set(section, entries = new Map());
  entries.set(name, { value, where: { ...where, field: `${section}.${name}` }, setText });
}

function unknownTopLevel(key: string): string {
  for (const [section, table] of Object.entries(SECTIONS)) {
    if (key in table) return `unknown top-level key "${key}": it belongs under "${section}:"`;
  }
  const valid = [...TOP_LEVEL_KEYS, ...ALL_SECTIONS];
  return `unknown top-level key "${key}"; did you mean "${closestMatch(key, valid)}"?`;
}

function unknownKey(section: string, key: string): string {
  const here = [...spellings(section).keys()];
  for (const [other, table] of Object.entries(SECTIONS)) {
    if (other !== section && key in table) {
      return `unknown key "${key}" in section "${section}": it belongs under "${other}:"`;
    }
  }
  return `unknown key "${key}" in section "${section}"; did you mean "${closestMatch(key, here)}"?`;
}

function validate(raw: RawConfig, file: string, problems: InputError[]): Config | undefined {
  const before = problems.length;
  const recipeEntry = raw.top.get("recipe");
  let recipe: Config["recipe"] | undefined;
  if (recipeEntry === undefined) {
    problems.push(
      new InputError(
        { file, field: "recipe" },
        `missing top-level key "recipe" (one of ${RECIPES.join(", ")})`,
      ),
    );
  } else if (!(RECIPES as readonly unknown[]).includes(recipeEntry.value)) {
    const written = String(recipeEntry.value);
    problems.push(
      new InputError(
        recipeEntry.where,
        `unknown recipe "${written}": expected one of ${RECIPES.join(", ")}; did you mean "${
          closestMatch(written, RECIPES)
        }"?`,
      ),
    );
  } else {
    recipe = recipeEntry.value as Config["recipe"];
  }
  const nameEntry = raw.top.get("name");
  let name: string | null = null;
  const nameValue = nameEntry?.setText ?? nameEntry?.value ?? null;
  if (nameEntry !== undefined && nameValue !== null) {
    if (typeof nameValue === "string" && nameValue !== "") name = nameValue;
    else problems.push(new InputError(nameEntry.where, "expected a non-empty string"));
  }

  const resolve = (section: string, table: Record<string, KeySpec<unknown>>) => {
    const out: Record<string, unknown> = {};
    const entries = raw.sections.get(section) ?? new Map<string, RawEntry>();
    for (const [key, spec] of Object.entries(table)) {
      const entry = entries.get(key);
      if (entry === undefined) {
        out[key] = structuredClone(spec.default);
        continue;
      }
      const checked = checkValue(spec, asWritten(spec, entry));
      if (checked.ok) out[key] = checked.value;
      else problems.push(new InputError(entry.where, checked.problem));
    }
    return out;
  };
  const model = resolve("model", SECTIONS.model) as ModelConfig;
  const data = resolve("data", SECTIONS.data) as DataConfig;
  const training = resolve("training", SECTIONS.training) as TrainingConfig;

  const phases: Record<string, TrainingConfig | null> = { phase1: null, phase2: null };
  for (const phase of PHASE_SECTIONS) {
    const entries = raw.sections.get(phase);
    if (entries !== undefined && recipe !== undefined && !trainsInPhases(recipe)) {
      const phased = RECIPES.filter(trainsInPhases).map((r) => `"${r}"`).join(", ");
      problems.push(
        new InputError(
          raw.sectionWhere.get(phase) ?? { file, field: phase },
          `section "${phase}" only applies to recipe ${phased}, not "${recipe}"`,
        ),
      );
      continue;
    }
    for (const [key, entry] of entries ?? []) {
      if (trainingKeys[key as keyof typeof trainingKeys].phase === false) {
        problems.push(
          new InputError(entry.where, `"${key}" cannot differ between phases; set it in training`),
        );
      }
    }
    if (recipe === undefined || !trainsInPhases(recipe)) continue;
    // A phase section wins over `training`, so a `--set training.x` it shadows would do nothing.
    for (const [key, entry] of entries ?? []) {
      const set = raw.sections.get("training")?.get(key);
      if (set?.setText === undefined || entry.setText !== undefined) continue;
      problems.push(
        new InputError(
          set.where,
          `${phase}.${key} (${formatLocation(entry.where)}) overrides training.${key} in ` +
            `${phase}; use --set ${phase}.${key}=… (and the other phase) instead`,
        ),
      );
    }
    const overrides: Record<string, unknown> = {};
    for (const [key, entry] of entries ?? []) {
      const spec = trainingKeys[key as keyof typeof trainingKeys];
      const checked = checkValue(spec, asWritten(spec, entry));
      if (checked.ok) overrides[key] = checked.value;
      else problems.push(new InputError(entry.where, checked.problem));
    }
    phases[phase] = { ...structuredClone(training), ...overrides };
  }
  if (problems.length > before || recipe === undefined) return undefined;
  return {
    recipe,
    name,
    model,
    data,
    training,
    phase1: phases.phase1 ?? null,
    phase2: phases.phase2 ?? null,
  };
}

/**
 * The value to check: for a string key set by `--set`, the text as typed
 * (YAML would read `--set training.output_dir=0123` as the number 123).
 */
function asWritten(spec: KeySpec<unknown>, entry: RawEntry): unknown {
  const { value, setText } = entry;
  const scalar = typeof value === "number" || typeof value === "boolean";
  return spec.kind === "string" && scalar && setText !== undefined ? setText : value;
}

/** Where the user set `path` ("section.key"); the file alone when it was left at its default. */
function locateKey(raw: RawConfig, path: string, file: string): InputLocation {
  const [section, key] = path.split(".") as [string, string | undefined];
  if (key === undefined) return raw.top.get(section)?.where ?? { file, field: section };
  return raw.sections.get(section)?.get(key)?.where ?? { file, field: path };
}
