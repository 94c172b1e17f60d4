/**
 * The run directory (`docs/run-layout.md`): `run.json` rewritten atomically,
 * `config.yaml`, an appending `metrics.jsonl`, `checkpoints/checkpoint-<step>/`
 * with HF-style `save_total_limit` rotation that keeps the best checkpoint,
 * and `eval/step-<step>.json`. The trainer writes it; the dashboard reads it.
 *
 * @module
 */

import { basename, join } from "node:path";
import { InputError } from "@irforge/data/input-error";
import type { RngState } from "./rng.ts";
import { outputDirError } from "./output_dir_error.ts";

/** Lifecycle of a run as the dashboard shows it. */
export type RunStatus = "running" | "finished" | "failed" | "interrupted";

/** The best value of `metric_for_best_model` seen so far. */
export interface BestMetric {
  /** Metric name as in `metrics.jsonl`, e.g. `eval/ndcg@10`. */
  metric: string;
  /** Its best value. */
  value: number;
  /** Step of the evaluation that produced it. */
  step: number;
}

/** Contents of `run.json`. */
export interface RunSummary {
  /** Unique run name (the directory name unless given). */
  name: string;
  /** Recipe that trains. */
  recipe: string;
  /** Lifecycle state. */
  status: RunStatus;
  /** ISO-8601 time the run was created. */
  started_at: string;
  /** ISO-8601 time of the last change. */
  updated_at: string;
  /** ISO-8601 time the run ended, or `null` while it runs. */
  finished_at: string | null;
  /** Last optimizer step logged. */
  step: number;
  /** Planned optimizer steps. */
  total_steps: number;
  /** Best metric so far, or `null`. */
  best: BestMetric | null;
  /** Why the run failed (added to the documented layout; `null` otherwise). */
  error: string | null;
  /**
   * The WebGPU provider, adapter and features the run computed on (`null`
   * when not recorded, e.g. runs written before it was).
   */
  device: RunDevice | null;
}

/** What `run.json` records about the device (the tensor package's `DeviceFacts`). */
export interface RunDevice {
  /** `deno` or `dawn`. */
  provider: string;
  /** Adapter description. */
  description: string;
  /** Enabled WebGPU features. */
  features: string[];
  /** Further facts (vendor, subgroup sizes, subgroup-matrix configs). */
  [fact: string]: unknown;
}

/** Where training stopped in the data, enough to rebuild the order and skip to it. */
export interface DataPosition {
  /** 0-based epoch being read. */
  epoch: number;
  /** Training examples of that epoch already consumed. */
  index: number;
}

/** One `metrics.jsonl` record. */
export type MetricsRecord = { step: number; time: string } & Record<string, unknown>;

/** Contents of `checkpoints/checkpoint-<step>/trainer_state.json`. */
export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  /** Fractional epoch (HF convention: step / steps per epoch). */
  epoch: number;
  /** Where to continue reading training data. */
  data_position: DataPosition;
  /** The trainer RNG, to continue the exact same random stream. */
  rng_state: RngState;
  /** Best metric at the time of the checkpoint. */
  best: BestMetric | null;
  /** The last few metrics records, for a quick look without `metrics.jsonl`. */
  log_history_tail?: MetricsRecord[];
}

/** `trainer_state.json` text for a state. */
export function serializeTrainerState(state: TrainerState): string {
  return JSON.stringify(state, null, 2) + "\n";
}

/** Parses and checks `trainer_state.json`; errors name the file and the field. */
export function parseTrainerState(text: string, file: string): TrainerState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError({ file }, `not valid JSON: ${(error as Error).message}`);
  }
  const fail = (field: string, problem: string): never => {
    throw new InputError({ file, field }, problem);
  };
  if (typeof value !== "object" || value === null) fail("(root)", "expected a JSON object");
  const o = value as Record<string, unknown>;
  const count = (v: unknown, field: string) =>
    Number.isInteger(v) && (v as number) >= 0
      ? v as number
      : fail(field, "expected an integer ≥ 0");
  const step = count(o.step, "step");
  const epoch = typeof o.epoch === "number" && o.epoch >= 0
    ? o.epoch
    : fail("epoch", "expected a number ≥ 0");
  const position = o.data_position as Record<string, unknown> | null | undefined;
  if (typeof position !== "object" || position === null) {
    fail("data_position", "expected {epoch, index}");
  }
  const data_position = {
    epoch: count(position!.epoch, "data_position.epoch"),
    index: count(position!.index, "data_position.index"),
  };
  const rng = o.rng_state as Record<string, unknown> | undefined;
  const words = rng?.s;
  if (
    rng?.algorithm !== "xoshiro128**" || !Array.isArray(words) || words.length !== 4 ||
    !words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)
  ) {
    fail("rng_state", 'expected {"algorithm": "xoshiro128**", "s": [four uint32]}');
  }
  const best = parseBest(o.best, (problem) => fail("best", problem));
  const state: TrainerState = {
    step,
    epoch,
    data_position,
    rng_state: { algorithm: "xoshiro128**", s: [...words as number[]] as RngState["s"] },
    best,
  };
  if (o.log_history_tail !== undefined) {
    if (!Array.isArray(o.log_history_tail)) fail("log_history_tail", "expected a list");
    state.log_history_tail = o.log_history_tail as MetricsRecord[];
  }
  return state;
}

function parseBest(value: unknown, fail: (problem: string) => never): BestMetric | null {
  if (value === null || value === undefined) return null;
  const b = value as Record<string, unknown>;
  if (
    typeof b !== "object" || typeof b.metric !== "string" || typeof b.value !== "number" ||
    !Number.isInteger(b.step)
  ) {
    return fail("expected null or {metric, value, step}");
  }
  return { metric: b.metric, value: b.value, step: b.step as number };
}

/**
 * Which checkpoint steps `save_total_limit` rotation deletes, exactly as HF
 * `Trainer._rotate_checkpoints`: sort by step, move the best checkpoint to the
 * second-to-last place (the newest stays last), and delete from the front;
 * with a limit of 1 and a best checkpoint that is not the newest, keep 2.
 *
 * @param steps Steps of the existing checkpoints.
 * @param limit `save_total_limit` (`null`: keep all).
 * @param bestStep Step of the best checkpoint, if there is one on disk.
 */
export function checkpointsToDelete(
  steps: number[],
  limit: number | null,
  bestStep: number | null,
): number[] {
  if (limit === null || limit <= 0 || steps.length <= limit) return [];
  const sorted = [...steps].sort((a, b) => a - b);
  const bestIndex = bestStep === null ? -1 : sorted.indexOf(bestStep);
  if (bestIndex >= 0) {
    for (let i = bestIndex; i < sorted.length - 2; i++) {
      [sorted[i], sorted[i + 1]] = [sorted[i + 1]!, sorted[i]!];
    }
  }
  let keep = limit;
  if (bestIndex >= 0 && limit === 1 && sorted[sorted.length - 1] !== bestStep) keep = 2;
  return sorted.slice(0, Math.max(0, sorted.length - keep));
}

/** A finished checkpoint on disk. */
export interface CheckpointInfo {
  /** Optimizer step it was taken at. */
  step: number;
  /** Its directory. */
  path: string;
}

/**
 * Complete checkpoints of a run directory (those with a `trainer_state.json`),
 * by increasing step. Half-written `checkpoint-<step>.tmp` directories are ignored.
 */
export async function listCheckpoints(runPath: string): Promise<CheckpointInfo[]> {
  const dir = join(runPath, "checkpoints");
  const found: CheckpointInfo[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = entry.isDirectory ? /^checkpoint-(\d+)$/.exec(entry.name) : null;
      if (!match) continue;
      const path = join(dir, entry.name);
      if (await exists(join(path, "trainer_state.json"))) {
        found.push({ step: Number(match[1]), path });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort((a, b) => a.step - b.step);
}

/**
 * The checkpoint `--resume PATH` means: PATH itself when it is a checkpoint,
 * else the latest checkpoint of the run directory PATH.
 */
export async function findResumeCheckpoint(path: string): Promise<CheckpointInfo> {
  const own = join(path, "trainer_state.json");
  if (await exists(own)) {
    const state = parseTrainerState(await Deno.readTextFile(own), own);
    return { step: state.step, path };
  }
  const all = await listCheckpoints(path);
  const latest = all[all.length - 1];
  if (!latest) {
    throw new InputError(
      { file: path },
      "nothing to resume: neither a checkpoint (trainer_state.json) nor a run directory with " +
        "checkpoints/checkpoint-<step>/",
    );
  }
  return latest;
}

/** How the best checkpoint is chosen (`metric_for_best_model`, `greater_is_better`). */
export interface BestMetricOptions {
  /** Metric name; `ndcg@10` and `eval/ndcg@10` mean the same. */
  metric: string;
  /** Whether larger is better (default: unless the name ends in `loss`, as HF). */
  greaterIsBetter?: boolean | null;
}

/** Options of {@linkcode RunDir.create} and {@linkcode RunDir.resume}. */
export interface RunDirOptions {
  /** Recipe name for `run.json`. */
  recipe: string;
  /** Planned optimizer steps. */
  totalSteps: number;
  /** Run name (default: the directory's name). */
  name?: string;
  /** `save_total_limit` (`null`/absent: keep every checkpoint). */
  saveTotalLimit?: number | null;
  /** `metric_for_best_model`, when set. */
  bestMetric?: BestMetricOptions | null;
  /** The device the run computes on, recorded in `run.json`. */
  device?: RunDevice | null;
  /** Clock, for tests. */
  now?: () => Date;
}

/** One evaluation's results as written to `eval/step-<step>.json`. */
export interface EvalResult {
  /** Aggregate metrics, e.g. `{"ndcg@10": 0.61}` (no `eval/` prefix). */
  metrics: Record<string, number>;
  /** Per-query metrics: `{qid: {"ndcg@10": …}}`. */
  per_query?: Record<string, Record<string, number>>;
}

/** A run directory being written. */
export class RunDir {
  /** The directory. */
  readonly path: string;
  #summary: RunSummary;
  #metrics: Deno.FsFile;
  #options: RunDirOptions;
  #now: () => Date;

  private constructor(
    path: string,
    summary: RunSummary,
    metrics: Deno.FsFile,
    options: RunDirOptions,
  ) {
    this.path = path;
    this.#summary = summary;
    this.#metrics = metrics;
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Creates a new run directory at `path`, or at `path-2`, `path-3`, … when it
   * exists (never reusing a directory), and writes the first `run.json`.
   */
  static async create(path: string, options: RunDirOptions): Promise<RunDir> {
    let chosen = path;
    let suffix = "";
    try {
      await Deno.mkdir(join(path, ".."), { recursive: true });
      for (let n = 2;; n++) {
        try {
          await Deno.mkdir(chosen); // fails if it exists: claims the name atomically
          break;
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          suffix = `-${n}`;
          chosen = path + suffix;
        }
      }
      await Deno.mkdir(join(chosen, "checkpoints"));
      await Deno.mkdir(join(chosen, "eval"));
    } catch (error) {
      throw await outputDirError(chosen, error);
    }
    const now = (options.now ?? (() => new Date()))().toISOString();
    const summary: RunSummary = {
      name: options.name !== undefined ? options.name + suffix : basename(chosen),
      recipe: options.recipe,
      status: "running",
      started_at: now,
      updated_at: now,
      finished_at: null,
      step: 0,
      total_steps: options.totalSteps,
      best: null,
      error: null,
      device: options.device ?? null,
    };
    const metrics = await Deno.open(join(chosen, "metrics.jsonl"), { append: true, create: true });
    const run = new RunDir(chosen, summary, metrics, options);
    await run.#writeSummary(now);
    return run;
  }

  /**
   * Reopens an existing run directory to continue it from checkpoint step
   * `fromStep`: status back to `running`, and `metrics.jsonl` records after
   * `fromStep` dropped (they will be logged again), keeping malformed lines.
   */
  static async resume(path: string, fromStep: number, options: RunDirOptions): Promise<RunDir> {
    const file = join(path, "run.json");
    const summary = parseRunSummary(await Deno.readTextFile(file), file);
    const metricsPath = join(path, "metrics.jsonl");
    let lines: string[] = [];
    try {
      lines = (await Deno.readTextFile(metricsPath)).split("\n").filter((l) => l.trim() !== "");
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const kept = lines.filter((line) => {
      try {
        const step = (JSON.parse(line) as { step?: unknown }).step;
        return !(typeof step === "number" && step > fromStep);
      } catch {
        return true;
      }
    });
    await writeAtomic(metricsPath, kept.map((l) => l + "\n").join(""));
    await Deno.mkdir(join(path, "checkpoints"), { recursive: true });
    await Deno.mkdir(join(path, "eval"), { recursive: true });
    const metrics = await Deno.open(metricsPath, { append: true, create: true });
    summary.status = "running";
    summary.finished_at = null;
    summary.error = null;
    summary.step = fromStep;
    summary.total_steps = options.totalSteps;
    // A resumed run may continue on another machine: record where it runs now.
    if (options.device) summary.device = options.device;
    if (summary.best !== null && summary.best.step > fromStep) summary.best = null;
    const run = new RunDir(path, summary, metrics, options);
    await run.#writeSummary();
    return run;
  }

  /** A copy of the current `run.json` contents. */
  get summary(): RunSummary {
    return structuredClone(this.#summary);
  }

  /** The best metric so far (`null` before the first evaluation). */
  get best(): BestMetric | null {
    return this.#summary.best === null ? null : { ...this.#summary.best };
  }

  /** Writes `config.yaml` (the resolved configuration text). */
  async writeConfig(yamlText: string): Promise<void> {
    await writeAtomic(join(this.path, "config.yaml"), yamlText);
  }

  /** Updates fields of `run.json` and rewrites it atomically. */
  async update(patch: Partial<Pick<RunSummary, "step" | "total_steps">>): Promise<void> {
    Object.assign(this.#summary, patch);
    await this.#writeSummary();
  }

  /**
   * Appends one `metrics.jsonl` line `{step, time, ...metrics}` (written
   * whole, straight to the file) and advances `run.json`'s step. Non-finite
   * values (a diverged loss) are written as `null`, never dropped.
   */
  async log(step: number, metrics: Record<string, number>): Promise<void> {
    if (!Number.isInteger(step) || step < 0) {
      throw new RangeError(`step must be an integer ≥ 0, got ${step}`);
    }
    const record: Record<string, unknown> = { step, time: this.#now().toISOString() };
    for (const [name, value] of Object.entries(metrics)) {
      if (name === "step" || name === "time") throw new Error(`metric name "${name}" is reserved`);
      record[name] = Number.isFinite(value) ? value : null;
    }
    await writeAll(this.#metrics, new TextEncoder().encode(JSON.stringify(record) + "\n"));
    if (step > this.#summary.step) {
      this.#summary.step = step;
      await this.#writeSummary();
    }
  }

  /**
   * Starts checkpoint `step`: returns an empty directory
   * (`checkpoints/checkpoint-<step>.tmp`) for the model and optimizer files.
   * {@linkcode commitCheckpoint} makes it visible.
   */
  async beginCheckpoint(step: number): Promise<string> {
    const tmp = join(this.path, "checkpoints", `checkpoint-${step}.tmp`);
    await Deno.remove(tmp, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.mkdir(tmp, { recursive: true });
    return tmp;
  }

  /**
   * Finishes checkpoint `step`: writes `trainer_state.json`, renames the
   * directory to `checkpoint-<step>` (replacing an older one of that step),
   * then applies `save_total_limit` rotation. Returns the final directory.
   */
  async commitCheckpoint(step: number, state: TrainerState): Promise<string> {
    const tmp = join(this.path, "checkpoints", `checkpoint-${step}.tmp`);
    const final = join(this.path, "checkpoints", `checkpoint-${step}`);
    await Deno.writeTextFile(join(tmp, "trainer_state.json"), serializeTrainerState(state));
    // An older checkpoint of this step is moved aside, not deleted, until the new one is in
    // place: a process killed in between never loses both.
    const old = `${final}.old`;
    await Deno.remove(old, { recursive: true }).catch(() => {});
    let replaced = false;
    try {
      await Deno.rename(final, old);
      replaced = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.rename(tmp, final);
    if (replaced) await Deno.remove(old, { recursive: true });
    await this.#rotate();
    return final;
  }

  /** Complete checkpoints of this run, by step. */
  listCheckpoints(): Promise<CheckpointInfo[]> {
    return listCheckpoints(this.path);
  }

  /**
   * Writes `eval/step-<step>.json` (and `eval/step-<step>.run.txt` when the
   * TREC run text is given) and updates the best metric. Throws when
   * `metric_for_best_model` is set but missing from `result.metrics`.
   */
  async writeEval(step: number, result: EvalResult, runText?: string): Promise<void> {
    const body = { step, metrics: result.metrics, per_query: result.per_query ?? {} };
    await writeAtomic(join(this.path, "eval", `step-${step}.json`), JSON.stringify(body) + "\n");
    if (runText !== undefined) {
      await writeAtomic(join(this.path, "eval", `step-${step}.run.txt`), runText);
    }
    const best = this.#options.bestMetric;
    if (!best) return;
    const key = best.metric.replace(/^eval\//, "");
    const value = result.metrics[key];
    if (value === undefined) {
      throw new Error(
        `metric_for_best_model "${best.metric}" is not among the evaluation metrics: ${
          Object.keys(result.metrics).join(", ")
        }`,
      );
    }
    const greater = best.greaterIsBetter ?? !key.endsWith("loss");
    const current = this.#summary.best;
    if (current === null || (greater ? value > current.value : value < current.value)) {
      this.#summary.best = { metric: `eval/${key}`, value, step };
      await this.#writeSummary();
    }
  }

  /** Marks the run finished, failed (with the error) or interrupted, and closes it. */
  async finish(status: Exclude<RunStatus, "running">, error?: unknown): Promise<void> {
    this.#summary.status = status;
    this.#summary.finished_at = this.#now().toISOString();
    if (error !== undefined) {
      this.#summary.error = error instanceof Error ? error.message : String(error);
    }
    await this.#writeSummary();
    this.#metrics.close();
  }

  async #rotate(): Promise<void> {
    const all = await this.listCheckpoints();
    const bestStep = this.#summary.best?.step ?? null;
    const onDisk = all.some((c) => c.step === bestStep) ? bestStep : null;
    const doomed = checkpointsToDelete(
      all.map((c) => c.step),
      this.#options.saveTotalLimit ?? null,
      onDisk,
    );
    for (const step of doomed) {
      const info = all.find((c) => c.step === step)!;
      await Deno.remove(info.path, { recursive: true });
    }
  }

  async #writeSummary(at = this.#now().toISOString()): Promise<void> {
    this.#summary.updated_at = at;
    await writeAtomic(join(this.path, "run.json"), JSON.stringify(this.#summary, null, 2) + "\n");
  }
}

/** Parses and checks `run.json`; errors name the file and the field. */
export function parseRunSummary(text: string, file: string): RunSummary {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError({ file }, `not valid JSON: ${(error as Error).message}`);
  }
  const fail = (field: string, problem: string): never => {
    throw new InputError({ file, field }, problem);
  };
  const str = (field: string) =>
    typeof value[field] === "string" ? value[field] as string : fail(field, "expected a string");
  const int = (field: string) =>
    Number.isInteger(value[field]) ? value[field] as number : fail(field, "expected an integer");
  const status = str("status");
  if (!["running", "finished", "failed", "interrupted"].includes(status)) {
    fail("status", `expected running, finished, failed or interrupted, got "${status}"`);
  }
  const finished = value.finished_at;
  if (finished !== null && typeof finished !== "string") {
    fail("finished_at", "expected a string or null");
  }
  const error = value.error ?? null;
  if (error !== null && typeof error !== "string") fail("error", "expected a string or null");
  return {
    name: str("name"),
    recipe: str("recipe"),
    status: status as RunStatus,
    started_at: str("started_at"),
    updated_at: str("updated_at"),
    finished_at: finished as string | null,
    step: int("step"),
    total_steps: int("total_steps"),
    best: parseBest(value.best, (problem) => fail("best", problem)),
    error: error as string | null,
    device: parseDevice(value.device, (problem) => fail("device", problem)),
  };
}

function parseDevice(value: unknown, fail: (problem: string) => never): RunDevice | null {
  if (value === undefined || value === null) return null;
  const v = value as Record<string, unknown>;
  if (
    typeof value !== "object" || Array.isArray(value) || typeof v.provider !== "string" ||
    typeof v.description !== "string" || !Array.isArray(v.features)
  ) {
    fail('expected {"provider": string, "description": string, "features": [...]} or null');
  }
  return v as RunDevice;
}

/** Writes `text` to `path` so that readers see the old or the new file, never half of one. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
