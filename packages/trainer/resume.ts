/**
 * Choosing what `--resume PATH` continues, safely: the run directory is
 * locked first (see {@link RunLock}), the run's recipe must be the one about
 * to train, and every file of the checkpoint is checked before anything is
 * loaded. A damaged newest checkpoint (truncated weights, optimizer state or
 * `trainer_state.json`) is named and skipped for the newest complete one; a
 * damaged checkpoint named explicitly is refused with the choices spelled out.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { InputError } from "@irforge/data/input-error";
import { SafetensorsFile } from "@irforge/model/safetensors";
import {
  type CheckpointInfo,
  listCheckpoints,
  parseRunSummary,
  parseTrainerState,
} from "./run_dir.ts";
import { RunLock } from "./run_lock.ts";

/** Every file of a checkpoint directory, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await filesUnder(path));
    else if (entry.isFile) found.push(path);
  }
  return found.sort();
}

/**
 * Why checkpoint `dir` cannot be resumed from (one sentence naming the
 * damaged file), or `null` when every safetensors header and size, JSON file
 * and `trainer_state.json` is intact.
 */
export async function checkpointProblem(dir: string): Promise<string | null> {
  const state = join(dir, "trainer_state.json");
  try {
    parseTrainerState(await Deno.readTextFile(state), state);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? `${state} is missing` : (error as Error).message;
  }
  for (const file of await filesUnder(dir)) {
    try {
      if (file.endsWith(".safetensors")) (await SafetensorsFile.open(file)).close();
      else if (file.endsWith(".json")) JSON.parse(await Deno.readTextFile(file));
    } catch (error) {
      const message = (error as Error).message;
      return message.includes(file) ? message : `${file}: ${message}`;
    }
  }
  return null;
}

/** What {@link openResume} found. */
export interface ResumePoint {
  /** The run directory being continued. */
  runPath: string;
  /** The complete checkpoint to load. */
  checkpoint: CheckpointInfo;
  /** The run directory's lock, held until the caller releases it (absent when not asked for). */
  lock?: RunLock;
}

/** Whether `path` is a checkpoint directory rather than a run directory. */
async function isCheckpoint(path: string): Promise<boolean> {
  if (/^checkpoint-\d+$/.test(basename(path))) return true;
  try {
    await Deno.stat(join(path, "trainer_state.json"));
    return true;
  } catch {
    return false;
  }
}

/**
 * Locks the run that `resumePath` (a run or one of its checkpoints) belongs
 * to, checks that it was trained by `recipe`, and picks the checkpoint to
 * load. Throws {@link InputError} (one sentence) when there is nothing
 * complete to resume from; the lock is released on every failure.
 */
export async function openResume(
  resumePath: string,
  recipe: string,
  log: (line: string) => void,
  options: { lock?: boolean } = {},
): Promise<ResumePoint> {
  const explicit = await isCheckpoint(resumePath);
  const runPath = explicit ? dirname(dirname(resumePath)) : resumePath;
  try {
    await Deno.stat(join(runPath, "run.json"));
  } catch {
    throw new InputError(
      { file: resumePath },
      "nothing to resume: neither a checkpoint (trainer_state.json) nor a run directory " +
        "(run.json, checkpoints/checkpoint-<step>/)",
    );
  }
  // Ranks of a data-parallel job other than rank 0 read the run without locking it.
  const lock = options.lock === false ? undefined : await RunLock.acquire(runPath);
  try {
    if (lock?.tookOverFrom) {
      log(
        `took over the lock of ${runPath} from process ${lock.tookOverFrom.pid}, which is no ` +
          `longer running`,
      );
    }
    const summaryFile = join(runPath, "run.json");
    const summary = parseRunSummary(await Deno.readTextFile(summaryFile), summaryFile);
    if (summary.recipe !== recipe) {
      throw new InputError(
        { file: summaryFile, field: "recipe" },
        `this run was trained by the ${summary.recipe} recipe but the configuration is ` +
          `${recipe}; resume without --config (the run's own config.yaml is used) or start a new run`,
      );
    }
    const all = await listCheckpoints(runPath);
    if (explicit) {
      const problem = await checkpointProblem(resumePath);
      if (problem !== null) {
        const others = [];
        for (const c of [...all].reverse()) {
          if (c.path !== resumePath && await checkpointProblem(c.path) === null) others.push(c);
        }
        const choice = others.length > 0
          ? `resume from ${others[0]!.path} (the newest complete checkpoint) or from ${runPath}, ` +
            `which picks it`
          : `no other complete checkpoint exists in ${runPath}; start a new run`;
        throw new InputError({ file: resumePath }, `damaged checkpoint (${problem}); ${choice}`);
      }
      const state = join(resumePath, "trainer_state.json");
      const { step } = parseTrainerState(await Deno.readTextFile(state), state);
      return { runPath, checkpoint: { step, path: resumePath }, lock };
    }
    if (all.length === 0) {
      throw new InputError(
        { file: runPath },
        "nothing to resume: the run has no complete checkpoint (checkpoints/checkpoint-<step>/)",
      );
    }
    const damaged: string[] = [];
    for (const checkpoint of [...all].reverse()) {
      const problem = await checkpointProblem(checkpoint.path);
      if (problem === null) {
        if (damaged.length > 0) {
          log(`skipping damaged checkpoint(s): ${damaged.join("; ")}`);
          log(`resuming from the newest complete checkpoint, ${checkpoint.path}`);
        }
        return { runPath, checkpoint, lock };
      }
      damaged.push(`${basename(checkpoint.path)}: ${problem}`);
    }
    throw new InputError(
      { file: runPath },
      `every checkpoint is damaged (${damaged.join("; ")}); start a new run`,
    );
  } catch (error) {
    lock?.release();
    throw error;
  }
}
