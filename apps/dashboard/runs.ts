/**
 * Readers for the parts of a run directory (see `docs/run-layout.md`):
 * `run.json`, `config.yaml`, `checkpoints/` and `eval/`. Every path goes
 * through {@linkcode resolveInside}, and bad content becomes an `error`
 * field naming file and field rather than an exception.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { InputError } from "@irforge/data/input-error";
import { HttpError } from "./http_error.ts";
import {
  isInside,
  isValidRunName,
  realRoot,
  resolveInside,
  resolveInsideOrNull,
  resolveRunDir,
} from "./safe_paths.ts";

/** The statuses `run.json` may hold. */
export const RUN_STATUSES = ["running", "finished", "failed", "interrupted"] as const;

/** Best metric so far, as recorded in `run.json`. */
export interface BestMetric {
  /** Metric name, e.g. `eval/ndcg@10`. */
  metric: string;
  /** Its best value. */
  value: number;
  /** Step at which it was reached. */
  step: number;
}

/** One run as the runs list shows it. Fields are `null` when unknown. */
export interface RunSummary {
  /** Directory name. */
  name: string;
  /** Whether the directory name is a valid run name (only valid ones can be opened). */
  valid_name: boolean;
  /** Recipe from `run.json`. */
  recipe: string | null;
  /** `running`, `finished`, `failed`, `interrupted`, or `null` when unknown. */
  status: string | null;
  /** ISO-8601 start time. */
  started_at: string | null;
  /** ISO-8601 time of the last update. */
  updated_at: string | null;
  /** ISO-8601 end time. */
  finished_at: string | null;
  /** Last step reached. */
  step: number | null;
  /** Planned number of steps. */
  total_steps: number | null;
  /** Best metric, if any. */
  best: BestMetric | null;
  /** What is wrong with `run.json` or the directory, or `null`. */
  error: string | null;
}

function blankSummary(name: string): RunSummary {
  return {
    name,
    valid_name: isValidRunName(name),
    recipe: null,
    status: null,
    started_at: null,
    updated_at: null,
    finished_at: null,
    step: null,
    total_steps: null,
    best: null,
    error: null,
  };
}

/** Reads a JSON file, turning a parse error into an {@linkcode InputError} for `shown`. */
async function readJson(path: string, shown: string): Promise<unknown> {
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError({ file: shown }, `not valid JSON: ${(error as Error).message}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks the fields of a parsed `run.json` and copies them into `summary`.
 * Throws an {@linkcode InputError} naming the first bad field.
 */
export function applyRunJson(summary: RunSummary, value: unknown, shown: string): void {
  const bad = (field: string, problem: string) => new InputError({ file: shown, field }, problem);
  if (!isObject(value)) throw new InputError({ file: shown }, "expected a JSON object");
  const text = (field: string): string | null => {
    const v = value[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string") throw bad(field, `expected a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const integer = (field: string): number | null => {
    const v = value[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw bad(field, `expected a non-negative integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  summary.recipe = text("recipe");
  const status = text("status");
  if (status !== null && !(RUN_STATUSES as readonly string[]).includes(status)) {
    throw bad(
      "status",
      `expected one of ${RUN_STATUSES.join(", ")}, got ${JSON.stringify(status)}`,
    );
  }
  summary.status = status;
  summary.started_at = text("started_at");
  summary.updated_at = text("updated_at");
  summary.finished_at = text("finished_at");
  summary.step = integer("step");
  summary.total_steps = integer("total_steps");
  const best = value.best;
  if (best !== undefined && best !== null) {
    if (
      !isObject(best) || typeof best.metric !== "string" || typeof best.value !== "number" ||
      typeof best.step !== "number"
    ) {
      throw bad("best", `expected {"metric": string, "value": number, "step": number} or null`);
    }
    summary.best = { metric: best.metric, value: best.value, step: best.step };
  }
}

/** Summary of the run in directory `dir` (real path) named `name`. */
async function summarize(dir: string, name: string): Promise<RunSummary> {
  const summary = blankSummary(name);
  const shown = `${name}/run.json`;
  try {
    applyRunJson(summary, await readJson(`${dir}/run.json`, shown), shown);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) summary.error = `${shown}: missing`;
    else if (error instanceof InputError) summary.error = error.message;
    else summary.error = `${shown}: ${(error as Error).message}`;
  }
  return summary;
}

/** Summary of run `name` (400 bad name, 404 unknown, 403 outside). */
export async function readRunSummary(root: string, name: string): Promise<RunSummary> {
  const dir = await resolveRunDir(root, name);
  return await summarize(dir, name);
}

/**
 * Lists the runs below `root`: every subdirectory not starting with `.`,
 * newest start first. Entries with bad names or symlinks leading outside
 * are listed with an `error` (and cannot be opened). A missing runs
 * directory lists as empty.
 */
export async function listRuns(root: string): Promise<RunSummary[]> {
  const rootReal = await realRoot(root);
  if (rootReal === null) return [];
  const runs: RunSummary[] = [];
  for await (const entry of Deno.readDir(rootReal)) {
    if (entry.name.startsWith(".")) continue;
    const path = `${rootReal}/${entry.name}`;
    let real: string;
    try {
      real = await Deno.realPath(path);
    } catch {
      continue; // a dangling symlink is no run
    }
    if (!isInside(rootReal, real)) {
      runs.push({ ...blankSummary(entry.name), error: "points outside the runs directory" });
      continue;
    }
    if (!(await Deno.stat(real)).isDirectory) continue;
    if (!isValidRunName(entry.name)) {
      runs.push({ ...blankSummary(entry.name), error: "invalid run name: cannot be opened" });
      continue;
    }
    runs.push(await summarize(real, entry.name));
  }
  runs.sort((a, b) =>
    (b.started_at ?? "").localeCompare(a.started_at ?? "") || a.name.localeCompare(b.name)
  );
  return runs;
}

/** The resolved configuration of a run. */
export interface RunConfig {
  /** The text of `config.yaml`. */
  text: string;
  /** The parsed YAML, or `null` when it does not parse. */
  parsed: unknown;
  /** The YAML parse error, or `null`. */
  error: string | null;
}

/** Reads `config.yaml` of run `name` (404 when missing). */
export async function readConfig(root: string, name: string): Promise<RunConfig> {
  await resolveRunDir(root, name);
  const path = await resolveInside(root, [name, "config.yaml"], `${name}/config.yaml`);
  const text = await Deno.readTextFile(path);
  try {
    return { text, parsed: parseYaml(text) ?? null, error: null };
  } catch (error) {
    return { text, parsed: null, error: `${name}/config.yaml: ${(error as Error).message}` };
  }
}

/** A file inside a checkpoint. */
export interface CheckpointFile {
  /** File name relative to the checkpoint directory. */
  name: string;
  /** Size in bytes. */
  bytes: number;
}

/** One `checkpoints/checkpoint-<step>` directory. */
export interface Checkpoint {
  /** Directory name. */
  name: string;
  /** Step from the directory name. */
  step: number;
  /** Total size of its files in bytes. */
  bytes: number;
  /** Its files, sorted by name (symlinks are not followed). */
  files: CheckpointFile[];
  /** Parsed `trainer_state.json`, or `null` when absent or bad. */
  trainer_state: Record<string, unknown> | null;
  /** What is wrong with `trainer_state.json`, or `null`. */
  error: string | null;
}

async function walkFiles(dir: string, prefix: string, out: CheckpointFile[]): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    // lstat: a symlink is listed with its own size and never followed.
    const info = await Deno.lstat(path);
    if (info.isDirectory) await walkFiles(path, `${prefix}${entry.name}/`, out);
    else out.push({ name: `${prefix}${entry.name}`, bytes: info.size });
  }
}

/** Lists the checkpoints of run `name`, by step (empty when there are none). */
export async function listCheckpoints(root: string, name: string): Promise<Checkpoint[]> {
  await resolveRunDir(root, name);
  const dir = await resolveInsideOrNull(root, [name, "checkpoints"]);
  if (dir === null) return [];
  const checkpoints: Checkpoint[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const match = /^checkpoint-(\d+)$/.exec(entry.name);
    if (!match) continue;
    let path: string | null;
    try {
      path = await resolveInsideOrNull(root, [name, "checkpoints", entry.name]);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      // A symlink leading outside: list it as broken, read nothing from it.
      checkpoints.push({
        name: entry.name,
        step: Number(match[1]),
        bytes: 0,
        files: [],
        trainer_state: null,
        error: error.message,
      });
      continue;
    }
    if (path === null || !(await Deno.stat(path)).isDirectory) continue;
    const files: CheckpointFile[] = [];
    await walkFiles(path, "", files);
    files.sort((a, b) => a.name.localeCompare(b.name));
    const checkpoint: Checkpoint = {
      name: entry.name,
      step: Number(match[1]),
      bytes: files.reduce((sum, file) => sum + file.bytes, 0),
      files,
      trainer_state: null,
      error: null,
    };
    const shown = `${name}/checkpoints/${entry.name}/trainer_state.json`;
    try {
      const statePath = await resolveInsideOrNull(root, [
        name,
        "checkpoints",
        entry.name,
        "trainer_state.json",
      ]);
      if (statePath !== null) {
        const state = await readJson(statePath, shown);
        if (!isObject(state)) throw new InputError({ file: shown }, "expected a JSON object");
        checkpoint.trainer_state = state;
      }
    } catch (error) {
      checkpoint.error = error instanceof InputError || error instanceof HttpError
        ? error.message
        : `${shown}: ${(error as Error).message}`;
    }
    checkpoints.push(checkpoint);
  }
  checkpoints.sort((a, b) => a.step - b.step);
  return checkpoints;
}

/** One evaluation, `eval/step-<step>.json`. */
export interface Evaluation {
  /** Step from the file name. */
  step: number;
  /** File name. */
  file: string;
  /** Aggregate metrics (numbers only). */
  metrics: Record<string, number>;
  /** Number of queries in `per_query`. */
  queries: number;
  /** Whether `step-<step>.run.txt` exists. */
  has_run: boolean;
  /** Per-query metrics, only when asked for one step. */
  per_query?: Record<string, Record<string, number>>;
}

/** An eval file that could not be read. */
export interface EvalProblem {
  /** File name inside `eval/`. */
  file: string;
  /** What is wrong, naming file and field. */
  error: string;
}

function numberRecord(value: unknown, shown: string, field: string): Record<string, number> {
  if (!isObject(value)) {
    throw new InputError({ file: shown, field }, "expected an object of numbers");
  }
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "number") {
      throw new InputError(
        { file: shown, field: `${field}.${key}` },
        `expected a number, got ${JSON.stringify(v)}`,
      );
    }
    out[key] = v;
  }
  return out;
}

/** Parses one eval file's content; throws an {@linkcode InputError} for bad content. */
export function parseEvaluation(
  value: unknown,
  step: number,
  shown: string,
  withPerQuery: boolean,
): Omit<Evaluation, "file" | "has_run"> {
  if (!isObject(value)) throw new InputError({ file: shown }, "expected a JSON object");
  if (value.step !== undefined && value.step !== step) {
    throw new InputError(
      { file: shown, field: "step" },
      `is ${JSON.stringify(value.step)} but the file name says ${step}`,
    );
  }
  const metrics = numberRecord(value.metrics, shown, "metrics");
  const perQueryValue = value.per_query ?? {};
  if (!isObject(perQueryValue)) {
    throw new InputError({ file: shown, field: "per_query" }, "expected an object");
  }
  const evaluation: Omit<Evaluation, "file" | "has_run"> = {
    step,
    metrics,
    queries: Object.keys(perQueryValue).length,
  };
  if (withPerQuery) {
    const perQuery: Record<string, Record<string, number>> = {};
    for (const [qid, row] of Object.entries(perQueryValue)) {
      perQuery[qid] = numberRecord(row, shown, `per_query.${qid}`);
    }
    evaluation.per_query = perQuery;
  }
  return evaluation;
}

/** Lists the evaluations of run `name` by step, plus files that could not be read. */
export async function listEvaluations(
  root: string,
  name: string,
): Promise<{ evaluations: Evaluation[]; errors: EvalProblem[] }> {
  await resolveRunDir(root, name);
  const evaluations: Evaluation[] = [];
  const errors: EvalProblem[] = [];
  const dir = await resolveInsideOrNull(root, [name, "eval"]);
  if (dir === null) return { evaluations, errors };
  const names = new Set<string>();
  for await (const entry of Deno.readDir(dir)) names.add(entry.name);
  for (const file of names) {
    const match = /^step-(\d+)\.json$/.exec(file);
    if (!match) continue;
    const step = Number(match[1]);
    try {
      evaluations.push(await readEvaluationFile(root, name, file, step, false, names));
    } catch (error) {
      errors.push({ file, error: (error as Error).message });
    }
  }
  evaluations.sort((a, b) => a.step - b.step);
  errors.sort((a, b) => a.file.localeCompare(b.file));
  return { evaluations, errors };
}

async function readEvaluationFile(
  root: string,
  name: string,
  file: string,
  step: number,
  withPerQuery: boolean,
  siblings?: Set<string>,
): Promise<Evaluation> {
  const shown = `${name}/eval/${file}`;
  const path = await resolveInside(root, [name, "eval", file], shown);
  const parsed = parseEvaluation(await readJson(path, shown), step, shown, withPerQuery);
  const runFile = `step-${step}.run.txt`;
  const hasRun = siblings
    ? siblings.has(runFile)
    : (await resolveInsideOrNull(root, [name, "eval", runFile])) !== null;
  return { ...parsed, file, has_run: hasRun };
}

/**
 * Reads `eval/step-<step>.json` of run `name` with its per-query metrics:
 * 400 for a bad step, 404 when absent, an {@linkcode InputError} naming
 * file and field for bad content.
 */
export async function readEvaluation(
  root: string,
  name: string,
  step: string,
): Promise<Evaluation> {
  await resolveRunDir(root, name);
  if (!/^\d{1,15}$/.test(step)) {
    throw new HttpError(
      400,
      `invalid step ${JSON.stringify(step)}: expected a non-negative integer`,
    );
  }
  return await readEvaluationFile(root, name, `step-${Number(step)}.json`, Number(step), true);
}
