/**
 * `deno task train`: the irforge training entry point.
 *
 * ```
 * deno task train [--config cfg.yaml] [--set section.key=value ...] [--resume DIR]
 * ```
 *
 * Exit codes: 0 finished, 1 training failed, 2 bad configuration or
 * arguments, 3 no GPU, 130 interrupted (a checkpoint was saved).
 *
 * @module
 */

import { join } from "node:path";
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
  splitUpstreamArgs,
  train,
  trainDistill,
  type TrainResult,
} from "@irforge/trainer";

const usage =
  `Usage: deno task train [--config cfg.yaml] [--set section.key=value ...] [--resume DIR]
       [--dialect irforge|blockrank|distill|qa-expert|rankllm] [--print-config]
       deno task train --recipe sft --model_name_or_path DIR --train_path F ...  (qa-expert flags)
       deno task train --train_dataset_path F --objective generation ...  (RankLLM flags)

Trains a retrieval or ranking model from a YAML recipe (built today: biencoder).
With no --config it trains a tiny bi-encoder on a synthetic collection that ships
with the repository and prints held-out nDCG@10 before and after.
--resume DIR continues a run directory (or one of its checkpoints) exactly;
its config.yaml is used unless --config is given.`;

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
        dialect: { type: "string" },
        "print-config": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    error(`${(e as Error).message}\n\n${usage}`);
    return { code: 2 };
  }
  if (values.help) {
    log(usage);
    return { code: 0 };
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
  try {
    await getDevice();
  } catch (e) {
    const sentence = describeNoGpu(e);
    if (sentence) {
      error(sentence);
      return { code: 3 };
    }
    throw e;
  }
  if (config.recipe === "distill") {
    // Two phases, each a full run under <run>/phase1 and <run>/phase2.
    const result = await trainDistill({ config, resume: values.resume ?? undefined, log });
    log(`distill ${result.status}: ${result.runPath}`);
    if (result.status === "failed") return { code: 1 };
    if (result.status === "interrupted") return { code: 130 };
    return { code: 0 };
  }
  let task;
  try {
    task = await buildTask(config, { log });
  } catch (e) {
    error((e as Error).message);
    return { code: 2 };
  }
  try {
    if (isDefault) log(`default run: ${config.recipe} on the synthetic collection (see --help)`);
    const result = await train({
      config,
      task,
      resume: values.resume ?? null,
      log,
      evaluateFirst: isDefault,
    });
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
  } finally {
    task.dispose();
  }
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
