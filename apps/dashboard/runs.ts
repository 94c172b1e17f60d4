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
  holdsRunFiles,
  isInside,
  isValidRunId,
  isValidRunName,
  realRoot,
  resolveInside,
  resolveInsideOrNull,
  resolveRunDir,
  runSegments,
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
  /**
   * The run id: the directory's path below the runs directory, its name for
   * a top-level run, `parent/name` for a nested one (`distill-x/phase1`).
   */
  name: string;
  /** Whether the id is a valid run id (only valid ones can be opened). */
  valid_name: boolean;
  /**
   * `run` for a run directory; `group` for a top-level directory that holds
   * no run files itself but nested runs (the fields below then summarise
   * its runs: earliest start, latest update, the most pressing status).
   */
  kind: "run" | "group";
  /** Id of the directory this run is nested in, or `null` at the top level. */
  parent: string | null;
  /** Ids of the runs nested in this one, by name (empty for most runs). */
  children: string[];
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
  /** WebGPU provider and adapter from `run.json`, e.g. `dawn · NVIDIA H200 · subgroups 32–32`. */
  device: string | null;
}

function blankSummary(name: string, parent: string | null = null): RunSummary {
  return {
    name,
    valid_name: parent === null ? isValidRunName(name) : isValidRunId(name),
    kind: "run",
    parent,
    children: [],
    recipe: null,
    status: null,
    started_at: null,
    updated_at: null,
    finished_at: null,
    step: null,
    total_steps: null,
    best: null,
    error: null,
    device: null,
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
  summary.device = deviceText(value.device, (problem) => bad("device", problem));
}

/** One line for `run.json`'s `device` (written by the trainer), or `null` when absent. */
function deviceText(value: unknown, bad: (problem: string) => InputError): string | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value) || typeof value.provider !== "string") {
    throw bad('expected {"provider": string, "description": string, …} or null');
  }
  const parts = [value.provider, typeof value.description === "string" ? value.description : "?"];
  const sizes = value.subgroup_sizes;
  if (Array.isArray(sizes) && sizes.length === 2) parts.push(`subgroups ${sizes[0]}–${sizes[1]}`);
  const configs = value.subgroup_matrix_configs;
  if (Array.isArray(configs) && configs.length > 0) {
    parts.push(`subgroup matrices ${configs.join(", ")}`);
  }
  return parts.join(" · ");
}

/**
 * Summary of run `id` from its `run.json`, read through
 * {@linkcode resolveInsideOrNull} (a `run.json` linking outside the runs
 * directory is an error, never read).
 */
async function summarize(root: string, id: string, parent: string | null): Promise<RunSummary> {
  const summary = blankSummary(id, parent);
  const shown = `${id}/run.json`;
  try {
    const path = await resolveInsideOrNull(root, [...runSegments(id), "run.json"]);
    if (path === null) summary.error = `${shown}: missing`;
    else applyRunJson(summary, await readJson(path, shown), shown);
    if (summary.error === null && summary.best === null) {
      summary.best = await bestEvaluation(root, runSegments(id));
    }
  } catch (error) {
    if (error instanceof InputError || error instanceof HttpError) summary.error = error.message;
    else summary.error = `${shown}: ${(error as Error).message}`;
  }
  return summary;
}

/**
 * The run's main metric at its best over `eval/step-<n>.json`, for runs
 * without `metric_for_best_model` (whose `run.json` has no `best`): nDCG@10
 * where evaluated, else the first metric; larger is better unless the name
 * ends in `loss`. `null` when the run has not evaluated.
 */
export async function bestEvaluation(
  root: string,
  segments: readonly string[],
): Promise<BestMetric | null> {
  const dir = await resolveInsideOrNull(root, [...segments, "eval"]);
  if (dir === null) return null;
  let best: BestMetric | null = null;
  for await (const entry of Deno.readDir(dir)) {
    const match = /^step-(\d+)\.json$/.exec(entry.name);
    if (!match || !entry.isFile) continue;
    const path = await resolveInsideOrNull(root, [...segments, "eval", entry.name]);
    if (path === null) continue;
    let metrics: unknown;
    try {
      metrics = (JSON.parse(await Deno.readTextFile(path)) as { metrics?: unknown }).metrics;
    } catch {
      continue; // a half-written or damaged file is shown on the run's page, not here
    }
    if (!isObject(metrics)) continue;
    const names = Object.keys(metrics).filter((k) => typeof metrics[k] === "number");
    const name = names.includes("ndcg@10") ? "ndcg@10" : names[0];
    if (name === undefined) continue;
    const value = metrics[name] as number;
    const step = Number(match[1]);
    const lower = name.endsWith("loss");
    if (best !== null && best.metric !== `eval/${name}`) continue;
    const better = best === null || (lower ? value < best.value : value > best.value) ||
      (value === best.value && step < best.step);
    if (better) best = { metric: `eval/${name}`, value, step };
  }
  return best;
}

/** Order of statuses when a group summarises its runs: the first one present wins. */
const GROUP_STATUS_ORDER = ["running", "failed", "interrupted", "finished"];

/** The summary of a group directory `id` from its nested runs' summaries. */
function groupSummary(id: string, children: RunSummary[]): RunSummary {
  const summary = blankSummary(id);
  summary.kind = "group";
  summary.children = children.map((child) => child.name);
  const recipes = new Set(children.map((child) => child.recipe));
  if (recipes.size === 1) summary.recipe = children[0]!.recipe;
  const statuses = new Set(children.map((child) => child.status));
  summary.status = GROUP_STATUS_ORDER.find((status) => statuses.has(status)) ?? null;
  const times = (pick: (run: RunSummary) => string | null) =>
    children.map(pick).filter((time): time is string => time !== null).sort();
  summary.started_at = times((run) => run.started_at)[0] ?? null;
  summary.updated_at = times((run) => run.updated_at).at(-1) ?? null;
  const finished = times((run) => run.finished_at);
  summary.finished_at = summary.status !== "running" && finished.length === children.length
    ? finished.at(-1) ?? null
    : null;
  return summary;
}

/**
 * The runs nested in top-level directory `id` (real path `dir`): its
 * subdirectories that hold run files, by name. Subdirectories (or
 * symlinks) leading outside the runs directory, or back to `dir` or above
 * it, are skipped without looking inside them. Names that are no valid
 * run id are listed with an `error` (and cannot be opened).
 */
async function nestedRuns(rootReal: string, dir: string, id: string): Promise<RunSummary[]> {
  const runs: RunSummary[] = [];
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".") || !(entry.isDirectory || entry.isSymlink)) continue;
      names.push(entry.name);
    }
  } catch {
    return []; // unreadable: the directory itself is still listed
  }
  for (const name of names) {
    let real: string;
    try {
      real = await Deno.realPath(`${dir}/${name}`);
      if (!isInside(rootReal, real) || isInside(real, dir)) continue;
      if (!(await Deno.stat(real)).isDirectory || !(await holdsRunFiles(real))) continue;
    } catch {
      continue; // dangling or unreadable
    }
    const childId = `${id}/${name}`;
    if (!isValidRunId(childId)) {
      runs.push({ ...blankSummary(childId, id), error: "invalid run name: cannot be opened" });
      continue;
    }
    runs.push(await summarize(rootReal, childId, id));
  }
  runs.sort((a, b) => a.name.localeCompare(b.name));
  return runs;
}

/**
 * Summary of the top-level directory `id` (real path `dir`) and its nested
 * runs: a `group` when it holds no run files but nested runs, else a run.
 */
async function summarizeTop(
  rootReal: string,
  dir: string,
  id: string,
): Promise<{ summary: RunSummary; children: RunSummary[] }> {
  const children = await nestedRuns(rootReal, dir, id);
  if (children.length > 0 && !(await holdsRunFiles(dir))) {
    return { summary: groupSummary(id, children), children };
  }
  const summary = await summarize(rootReal, id, null);
  summary.children = children.map((child) => child.name);
  return { summary, children };
}

/**
 * Summary of run `id` and of the runs nested in it (none for a nested run;
 * those with bad names come with an `error`): 400 bad id, 404 unknown, 403
 * outside.
 */
export async function readRunTree(
  root: string,
  id: string,
): Promise<{ summary: RunSummary; children: RunSummary[] }> {
  const dir = await resolveRunDir(root, id);
  const rootReal = (await realRoot(root))!;
  const segments = id.split("/");
  if (segments.length > 1) {
    return { summary: await summarize(rootReal, id, segments[0]!), children: [] };
  }
  return await summarizeTop(rootReal, dir, id);
}

/** Summary of run `id` (400 bad id, 404 unknown, 403 outside). */
export async function readRunSummary(root: string, id: string): Promise<RunSummary> {
  return (await readRunTree(root, id)).summary;
}

/**
 * Lists the runs below `root`, newest start first: every top-level
 * subdirectory not starting with `.`, each followed by the runs nested in
 * it (subdirectories holding `run.json`, `metrics.jsonl` or `config.yaml`,
 * one level down, by name). A top-level directory without run files of its
 * own but with nested runs is listed as a `group`. Entries with bad names
 * or symlinks leading outside are listed with an `error` (and cannot be
 * opened; nested symlinks leading outside are not listed). A missing runs
 * directory lists as empty.
 */
export async function listRuns(root: string): Promise<RunSummary[]> {
  const rootReal = await realRoot(root);
  if (rootReal === null) return [];
  const top: { summary: RunSummary; children: RunSummary[] }[] = [];
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
      top.push({
        summary: { ...blankSummary(entry.name), error: "points outside the runs directory" },
        children: [],
      });
      continue;
    }
    if (!(await Deno.stat(real)).isDirectory) continue;
    if (!isValidRunName(entry.name)) {
      top.push({
        summary: { ...blankSummary(entry.name), error: "invalid run name: cannot be opened" },
        children: [],
      });
      continue;
    }
    top.push(await summarizeTop(rootReal, real, entry.name));
  }
  top.sort((a, b) =>
    (b.summary.started_at ?? "").localeCompare(a.summary.started_at ?? "") ||
    a.summary.name.localeCompare(b.summary.name)
  );
  return top.flatMap(({ summary, children }) => [summary, ...children]);
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
  const path = await resolveInside(
    root,
    [...runSegments(name), "config.yaml"],
    `${name}/config.yaml`,
  );
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
  const dir = await resolveInsideOrNull(root, [...runSegments(name), "checkpoints"]);
  if (dir === null) return [];
  const checkpoints: Checkpoint[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const match = /^checkpoint-(\d+)$/.exec(entry.name);
    if (!match) continue;
    let path: string | null;
    try {
      path = await resolveInsideOrNull(root, [...runSegments(name), "checkpoints", entry.name]);
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
        ...runSegments(name),
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
  const dir = await resolveInsideOrNull(root, [...runSegments(name), "eval"]);
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
  const path = await resolveInside(root, [...runSegments(name), "eval", file], shown);
  const parsed = parseEvaluation(await readJson(path, shown), step, shown, withPerQuery);
  const runFile = `step-${step}.run.txt`;
  const hasRun = siblings
    ? siblings.has(runFile)
    : (await resolveInsideOrNull(root, [...runSegments(name), "eval", runFile])) !== null;
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
