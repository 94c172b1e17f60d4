/**
 * The distill recipe's two phases as runs: phase 1 then phase 2 (minus the
 * skipped ones) of one student, each a full training run into `<run>/phase1`
 * and `<run>/phase2`, resumable phase by phase, with the final weights
 * copied to `training.artifacts_dir` when set. The phases' tasks (data,
 * losses, evaluation) are in `distill.ts`.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { findResumeCheckpoint, listCheckpoints } from "../run_dir.ts";
import { outputDirError } from "../output_dir_error.ts";
import type { Config } from "../config/schema.ts";
import { runDirectory } from "../config/run_location.ts";
import { train, type TrainingTask, type TrainResult } from "../loop.ts";
import type { DataParallel } from "../distributed/data_parallel.ts";
import { type DistillTasks, distillTasks } from "./distill.ts";
import { openDistillRoot } from "./distill_parallel.ts";

/** Options of {@link trainDistill}. */
export interface TrainDistillOptions {
  /** The resolved configuration. */
  config: Config;
  /** Tasks already built (default: built from the config and disposed at the end). */
  tasks?: DistillTasks;
  /** Run directory (default `runDirectory(config)`, made unique). */
  runPath?: string;
  /** A distill run directory to continue (the unfinished phase resumes, a finished phase is skipped). */
  resume?: string | null;
  /** Output lines. */
  log?: (line: string) => void;
  /** Progress bar (default true). */
  progress?: boolean;
  /** SIGINT/SIGTERM handling (default true). */
  handleSignals?: boolean;
  /** Evaluate before each phase's first step. */
  evaluateFirst?: boolean;
  /**
   * Data-parallel ranks (`tasks` must be built with the same communicator):
   * both phases shard each global batch, rank 0 writes the run directory
   * and the artifacts copy.
   */
  distributed?: DataParallel;
}

/** What {@link trainDistill} returns: the run directory and each phase's result (null: skipped). */
export interface DistillResult {
  /** The run directory; phases train in `phase1/` and `phase2/` under it. */
  runPath: string;
  /** Phase 1's result (null: skipped or finished in an earlier run). */
  phase1: TrainResult | null;
  /** Phase 2's result (null: skipped, or not reached). */
  phase2: TrainResult | null;
  /** `finished` when every phase that ran finished; else the first other status. */
  status: TrainResult["status"];
}

async function uniqueDirectory(path: string): Promise<string> {
  let madeParent = false;
  for (let i = 1;; i++) {
    const candidate = i === 1 ? path : `${path}-${i}`;
    try {
      await Deno.mkdir(candidate, { recursive: false });
      return candidate;
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) continue;
      // Once: a parent that exists and still refuses (e.g. /proc) must not loop forever.
      if (e instanceof Deno.errors.NotFound && !madeParent) {
        madeParent = true;
        await Deno.mkdir(resolve(candidate, ".."), { recursive: true })
          .catch(async (error) => {
            throw await outputDirError(candidate, error);
          });
        i--;
        continue;
      }
      throw await outputDirError(candidate, e);
    }
  }
}

async function phaseStatus(dir: string): Promise<string | null> {
  try {
    return (JSON.parse(await Deno.readTextFile(join(dir, "run.json"))) as { status: string })
      .status;
  } catch {
    return null;
  }
}

/** Runs phase 1 then phase 2 (minus skipped ones) into `<run>/phase1`, `<run>/phase2`. */
export async function trainDistill(options: TrainDistillOptions): Promise<DistillResult> {
  const { config } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const dp = options.distributed;
  const tasks = options.tasks ?? await distillTasks(config, { log, distributed: dp?.comm });
  // Each phase's state is read before any rank writes (the root is agreed in a collective).
  const statuses = new Map<number, string | null>();
  if (options.resume) {
    for (const n of [1, 2]) statuses.set(n, await phaseStatus(join(options.resume, `phase${n}`)));
  }
  const root = await openDistillRoot(
    dp ?? null,
    () =>
      options.resume ? Promise.resolve(options.resume) : uniqueDirectory(
        options.runPath ?? config.training.output_dir ?? runDirectory(config),
      ),
  );
  const result: DistillResult = { runPath: root, phase1: null, phase2: null, status: "finished" };
  // The task that trained the last phase in this process: its weights are the final ones
  // when the phase kept no checkpoint (save_strategy: no).
  let trainedLast: TrainingTask | null = null;
  try {
    const phases = [
      {
        n: 1,
        skip: config.training.skip_phase1,
        task: tasks.phase1,
        training: config.phase1 ?? config.training,
      },
      {
        n: 2,
        skip: config.training.skip_phase2,
        task: tasks.phase2,
        training: config.phase2 ?? config.training,
      },
    ] as const;
    for (const phase of phases) {
      if (phase.skip) continue;
      const dir = join(root, `phase${phase.n}`);
      const status = statuses.get(phase.n) ?? null;
      const laterStarted = phase.n === 1 && (statuses.get(2) ?? null) !== null;
      if (options.resume && (status === "finished" || laterStarted)) {
        log(`phase ${phase.n}: already finished in ${dir}`);
        // The next phase starts from this phase's final weights unless it has its own checkpoint.
        if (!laterStarted) await phase.task.loadWeights((await findResumeCheckpoint(dir)).path);
        continue;
      }
      log(`distill phase ${phase.n}`);
      const out = await train({
        config,
        training: {
          ...phase.training,
          output_dir: dir,
          run_name: `${config.name ?? "distill"}-phase${phase.n}`,
        },
        task: phase.task,
        runPath: dir,
        resume: options.resume && status !== null ? dir : null,
        log,
        progress: options.progress,
        handleSignals: options.handleSignals,
        evaluateFirst: options.evaluateFirst,
        distributed: dp,
      });
      if (phase.n === 1) result.phase1 = out;
      else result.phase2 = out;
      trainedLast = phase.task;
      if (out.status !== "finished") {
        result.status = out.status;
        break;
      }
    }
    const last = result.phase2 ?? result.phase1;
    const writes = !dp || dp.leader; // rank 0 alone writes
    if (config.training.artifacts_dir !== null && result.status === "finished" && last && writes) {
      const copied = await copyArtifacts(
        last.runPath,
        config.training.artifacts_dir,
        trainedLast ?? undefined,
      );
      log(`artifacts: final weights and config.yaml copied to ${copied}`);
    }
  } finally {
    if (!options.tasks) tasks.dispose();
  }
  return result;
}

/**
 * Copies the final checkpoint's files of the phase run at `phaseDir` and the
 * run's `config.yaml` into a new directory `artifactsDir` (`-2`, `-3`, … when it
 * exists: nothing there is overwritten); returns the directory. A phase that
 * kept no checkpoint (`save_strategy: no`) has its final weights written from
 * `finalWeights`, the task that just trained it, as upstream saves its final
 * model whatever it checkpointed.
 */
export async function copyArtifacts(
  phaseDir: string,
  artifactsDir: string,
  finalWeights?: TrainingTask,
): Promise<string> {
  const kept =
    await Deno.stat(join(phaseDir, "trainer_state.json")).then(() => true, () => false) ||
    (await listCheckpoints(phaseDir)).length > 0;
  if (!kept && finalWeights) {
    const target = await uniqueDirectory(artifactsDir);
    await finalWeights.saveWeights(target);
    await Deno.copyFile(join(phaseDir, "config.yaml"), join(target, "config.yaml"));
    return target;
  }
  const checkpoint = await findResumeCheckpoint(phaseDir);
  const target = await uniqueDirectory(artifactsDir);
  for await (const entry of Deno.readDir(checkpoint.path)) {
    if (entry.isFile) {
      await Deno.copyFile(join(checkpoint.path, entry.name), join(target, entry.name));
    }
  }
  await Deno.copyFile(join(phaseDir, "config.yaml"), join(target, "config.yaml"));
  return target;
}
