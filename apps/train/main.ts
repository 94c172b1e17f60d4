/**
 * `deno task train`: the irforge training entry point.
 *
 * ```
 * deno task train [--config cfg.yaml] [--set section.key=value ...] [--resume DIR] [--nproc N]
 * ```
 *
 * `--nproc N` runs N data-parallel ranks on this machine with `mpiexec`; a
 * process started by `mpiexec`/`mpirun` directly (several machines, a
 * hostfile) joins its job as one rank.
 *
 * Exit codes: 0 finished, 1 training failed, 2 bad configuration or
 * arguments, 3 no GPU, 130 interrupted (a checkpoint was saved).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { describeNoGpu, getDevice } from "@irforge/tensor";
import {
  buildTask,
  type Config,
  ConfigError,
  defaultConfig,
  flagsConfig,
  loadAnyConfig,
  loadConfig,
  printConfig,
  RECIPE_DEFINITIONS,
  splitUpstreamArgs,
  train,
  trainableRecipes,
  type TrainResult,
} from "@irforge/trainer";
import { InputError } from "@irforge/data/input-error";
import { RunLockedError } from "@irforge/trainer/run-lock";
import { missingDataFile } from "@irforge/trainer/data-files";
import { adapterHint } from "./adapter_hint.ts";
import {
  abortDataParallel,
  applyRankEnvironment,
  type DataParallel,
  joinDataParallel,
  launchedByMpi,
  launchRanks,
  leaveDataParallel,
  Mpi,
  withoutNproc,
} from "@irforge/trainer/distributed";

/** The recipes of the trainer's table, one line each: name and description. */
export function recipeLines(): string {
  const names = trainableRecipes();
  const width = Math.max(...names.map((name) => name.length));
  return names.map((name) => `  ${name.padEnd(width)}  ${RECIPE_DEFINITIONS[name].description}`)
    .join("\n");
}

/** The `--help` text; lists every recipe `train` runs. */
export function usageText(): string {
  return `Usage: deno task train [--config cfg.yaml] [--set section.key=value ...] [--resume DIR] [--nproc N]
       [--dialect irforge|blockrank|distill|qa-expert|rankllm] [--print-config]
       deno task train --recipe sft --model_name_or_path DIR --train_path F ...  (qa-expert flags)
       deno task train --train_dataset_path F --objective generation|ranking|combined ...  (RankLLM flags)

Trains a retrieval or ranking model from a YAML recipe (examples/<recipe>-*.yaml).
Recipes:
${recipeLines()}
With no --config it trains a tiny bi-encoder on a synthetic collection that
ships with the repository and prints held-out nDCG@10 before and after.
--set overrides one key after the file; for distill, a key that a phase1/phase2
section sets must be overridden there (--set phase1.max_steps=2).
--resume DIR continues a run directory (or one of its checkpoints) exactly;
its config.yaml is used unless --config is given. A damaged newest checkpoint
is reported and the newest complete one is used. One process trains in a run
directory at a time; a second one is refused with the holder's PID.
Ctrl-C or SIGTERM stops after the current optimizer step and saves a checkpoint
(exit 130); a second Ctrl-C exits at once, keeping the newest complete checkpoint.
--nproc N trains on N data-parallel ranks (one per GPU) with mpiexec (MPICH);
the global batch is N × per_device_train_batch_size. Under mpiexec/mpirun
directly (e.g. with a hostfile) each process joins the job as one rank.`;
}

export type { EvalOutcome, RunStatus, TrainResult } from "@irforge/trainer";

/** What {@link main} decided, for tests. */
export interface MainOutcome {
  /** Process exit code. */
  code: number;
  /** The training result, when training ran. */
  result?: TrainResult;
}

/** Runs the CLI with `args`; prints to `log`/`error`. */
export async function main(
  args: string[],
  log: (line: string) => void = console.log,
  error: (line: string) => void = console.error,
): Promise<MainOutcome> {
  let values;
  // qa-expert / RankLLM flags travel apart from irforge's own options (config/dialects).
  const split = splitUpstreamArgs(args);
  try {
    values = parseArgs({
      args: split.irforge,
      options: {
        config: { type: "string" },
        set: { type: "string", multiple: true },
        resume: { type: "string" },
        nproc: { type: "string" },
        dialect: { type: "string" },
        "print-config": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    error(`${(e as Error).message}\n\n${usageText()}`);
    return { code: 2 };
  }
  if (values.help) {
    log(usageText());
    return { code: 0 };
  }
  if (values.nproc !== undefined && !launchedByMpi()) {
    const nproc = Number(values.nproc);
    if (!Number.isInteger(nproc) || nproc < 1) {
      error(`--nproc: expected an integer ≥ 1, got "${values.nproc}"`);
      return { code: 2 };
    }
    if (nproc > 1) {
      const script = fileURLToPath(import.meta.url);
      return { code: await launchRanks(nproc, script, withoutNproc(args), error) };
    }
  }
  const sets = values.set ?? [];
  const isDefault = !values.config && !values.resume && !split.upstream;
  let config: Config;
  try {
    const dialect = values.dialect ?? undefined;
    const loaded = split.upstream
      ? flagsConfig(split.upstream, { dialect: split.dialect, recipe: split.recipe, sets })
      : values.config
      ? await loadAnyConfig(values.config, { sets, dialect })
      : null;
    if (loaded) {
      config = loaded.config;
      // --print-config shows the notes among its comments; its output stays valid YAML.
      if (!values["print-config"]) {
        for (const note of loaded.notes) log(`${loaded.dialect}: ${note}`);
      }
    } else if (values.resume) {
      config = await loadConfig(await resumeConfigPath(values.resume), sets);
    } else config = await defaultConfig(sets);
    if (values["print-config"]) {
      log(
        loaded
          ? printConfig(loaded)
          : printConfig({ config, dialect: "irforge", notes: [], mapping: [] }),
      );
      return { code: 0 };
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      error(e.message);
      return { code: 2 };
    }
    error((e as Error).message);
    return { code: 2 };
  }
  const missing = await missingDataFile(config, values.config ?? undefined);
  if (missing) {
    error(missing);
    return { code: 2 };
  }
  // Each rank's own GPU: IRFORGE_RANK_<NAME>=v0,v1,… sets <NAME> per local rank, before the device opens.
  if (launchedByMpi()) applyRankEnvironment();
  try {
    const hint = adapterHint(await getDevice());
    if (hint) error(hint);
  } catch (e) {
    const sentence = describeNoGpu(e);
    if (sentence) {
      error(sentence);
      return { code: 3 };
    }
    throw e;
  }
  let dp: DataParallel | undefined;
  if (launchedByMpi()) {
    dp = joinDataParallel(config.training.ddp_timeout);
    if (!dp.leader) log = () => {}; // rank 0 reports for the job
    log(`data parallel: ${dp.size} ranks over MPI; rank 0 writes the run directory`);
  }
  const recipe = RECIPE_DEFINITIONS[config.recipe];
  if (dp && !recipe.dataParallel) {
    await abortDataParallel(dp, new Error(`${config.recipe} does not train data-parallel yet`));
  }
  if (recipe.training.kind === "phases") {
    // Phases (distill: two), each a full run under <run>/phase1, <run>/phase2, ….
    let result;
    try {
      result = await recipe.training.run({
        config,
        resume: values.resume ?? undefined,
        log,
        distributed: dp,
        progress: dp ? dp.leader : undefined,
      });
    } catch (e) {
      if (dp) await abortDataParallel(dp, e); // never leave the other ranks waiting
      const sentence = userError(e);
      if (sentence === undefined) throw e;
      error(sentence);
      return { code: 2 };
    }
    if (dp && result.last) await leaveDataParallel(dp, result.last);
    else if (dp) await dp.close().then(() => Mpi.finalizeIfInitialized());
    log(`${config.recipe} ${result.status}: ${result.runPath}`);
    if (result.status === "failed") return { code: 1 };
    if (result.status === "interrupted") return { code: 130 };
    return { code: 0 };
  }
  let task;
  try {
    task = await buildTask(config, { log, distributed: dp?.comm });
  } catch (e) {
    if (dp) await abortDataParallel(dp, e);
    error((e as Error).message);
    return { code: 2 };
  }
  try {
    if (isDefault) log(`default run: ${config.recipe} on the synthetic collection (see --help)`);
    let result: TrainResult;
    try {
      result = await train({
        config,
        task,
        resume: values.resume ?? null,
        log,
        evaluateFirst: isDefault,
        distributed: dp,
        progress: dp ? dp.leader : undefined,
      });
    } catch (e) {
      const sentence = userError(e);
      if (sentence === undefined) throw e;
      if (dp) await abortDataParallel(dp, e); // never leave the other ranks waiting
      error(sentence);
      return { code: 2 };
    }
    if (dp) await leaveDataParallel(dp, result);
    if (isDefault && result.status === "finished") {
      const metric = "ndcg@10";
      const evalDir = join(result.runPath, "eval");
      const first = await readEvalMetric(join(evalDir, "step-0.json"), metric);
      const last = result.lastEval?.metrics[metric];
      if (first !== undefined && last !== undefined) {
        log(
          `held-out nDCG@10: ${first.toFixed(4)} before training → ${last.toFixed(4)} after ` +
            `(${last - first >= 0 ? "+" : ""}${(last - first).toFixed(4)})`,
        );
      }
    }
    log(`run ${result.status}: ${result.runPath} (step ${result.step}/${result.totalSteps})`);
    if (result.status === "failed") return { code: 1, result };
    if (result.status === "interrupted") return { code: 130, result };
    return { code: 0, result };
  } catch (e) {
    if (dp) await abortDataParallel(dp, e); // never leave the other ranks waiting
    throw e;
  } finally {
    task.dispose();
  }
}

/**
 * One sentence for what stops a run before it starts (a locked run directory,
 * a damaged checkpoint, another recipe's run, an unwritable output), or
 * `undefined` for a bug, which keeps its stack trace.
 */
function userError(e: unknown): string | undefined {
  if (e instanceof RunLockedError || e instanceof InputError) return e.message;
  if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
    return e.message;
  }
  if (e instanceof Error && /os error (28|30)\)/.test(e.message)) return e.message;
  return undefined;
}

/** `config.yaml` of the run that `--resume PATH` names (a run or a checkpoint directory). */
async function resumeConfigPath(path: string): Promise<string> {
  for (const candidate of [join(path, "config.yaml"), join(path, "..", "..", "config.yaml")]) {
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch {
      // try the next place
    }
  }
  throw new Error(`--resume ${path}: no config.yaml found in the run directory; pass --config`);
}

async function readEvalMetric(path: string, metric: string): Promise<number | undefined> {
  try {
    const body = JSON.parse(await Deno.readTextFile(path)) as { metrics?: Record<string, number> };
    return body.metrics?.[metric];
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  const { code } = await main(Deno.args);
  Deno.exit(code);
}
