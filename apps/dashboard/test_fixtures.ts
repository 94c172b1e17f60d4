/**
 * Builds temporary runs directories in the layout of `docs/run-layout.md`
 * for the dashboard's tests.
 *
 * @module
 */

import { join } from "node:path";

/** One checkpoint directory to create. */
export interface FixtureCheckpoint {
  /** Step in `checkpoint-<step>`. */
  step: number;
  /** Files by name with their content. */
  files: Record<string, string | Uint8Array>;
}

/** One eval file to create. */
export interface FixtureEval {
  /** Step in `step-<step>.json`. */
  step: number;
  /** Content: an object (written as JSON) or raw text. */
  content: unknown;
  /** Content of `step-<step>.run.txt`, if any. */
  runText?: string;
}

/** One run directory to create; absent parts are not written. */
export interface FixtureRun {
  /** Directory name. */
  name: string;
  /** `run.json`: an object (written as JSON) or raw text. */
  runJson?: unknown;
  /** `config.yaml` text. */
  config?: string;
  /** `metrics.jsonl` text, written as is. */
  metrics?: string;
  /** Checkpoints. */
  checkpoints?: FixtureCheckpoint[];
  /** Evaluations. */
  evals?: FixtureEval[];
}

/** The `run.json` of a run in the layout's example form. */
export function runJson(name: string, overrides: Record<string, unknown> = {}): unknown {
  return {
    name,
    recipe: "blockrank",
    status: "running",
    started_at: "2026-11-23T10:00:00.000Z",
    updated_at: "2026-11-23T10:05:00.000Z",
    finished_at: null,
    step: 120,
    total_steps: 500,
    best: { metric: "eval/ndcg@10", value: 0.61, step: 100 },
    ...overrides,
  };
}

/** A training metrics line for `step` with a loss falling as `3 / (1 + step / 50)`. */
export function trainLine(step: number): string {
  const loss = 3 / (1 + step / 50);
  return JSON.stringify({
    step,
    time: new Date(Date.UTC(2026, 10, 23, 10, 0, step)).toISOString(),
    epoch: step / 100,
    "train/loss": loss,
    "train/lm_loss": loss * 0.9,
    "train/learning_rate": 1e-4 * Math.min(1, step / 20),
    tokens_per_s: 5000 + 10 * step,
  }) + "\n";
}

function text(content: unknown): string {
  return typeof content === "string" ? content : JSON.stringify(content, null, 2);
}

/** Writes `runs` into `root` (created if needed). */
export async function writeRuns(root: string, runs: FixtureRun[]): Promise<void> {
  for (const run of runs) {
    const dir = join(root, run.name);
    await Deno.mkdir(dir, { recursive: true });
    if (run.runJson !== undefined) {
      await Deno.writeTextFile(join(dir, "run.json"), text(run.runJson));
    }
    if (run.config !== undefined) await Deno.writeTextFile(join(dir, "config.yaml"), run.config);
    if (run.metrics !== undefined) {
      await Deno.writeTextFile(join(dir, "metrics.jsonl"), run.metrics);
    }
    for (const checkpoint of run.checkpoints ?? []) {
      const path = join(dir, "checkpoints", `checkpoint-${checkpoint.step}`);
      await Deno.mkdir(path, { recursive: true });
      for (const [file, content] of Object.entries(checkpoint.files)) {
        if (typeof content === "string") await Deno.writeTextFile(join(path, file), content);
        else await Deno.writeFile(join(path, file), content);
      }
    }
    for (const evaluation of run.evals ?? []) {
      const evalDir = join(dir, "eval");
      await Deno.mkdir(evalDir, { recursive: true });
      await Deno.writeTextFile(
        join(evalDir, `step-${evaluation.step}.json`),
        text(evaluation.content),
      );
      if (evaluation.runText !== undefined) {
        await Deno.writeTextFile(
          join(evalDir, `step-${evaluation.step}.run.txt`),
          evaluation.runText,
        );
      }
    }
  }
}

/** A complete run: metrics for steps 10..`steps` by 10, two checkpoints, two evals. */
export function sampleRun(name: string, steps = 120): FixtureRun {
  let metrics = "";
  for (let step = 10; step <= steps; step += 10) {
    metrics += trainLine(step);
    if (step % 50 === 0) {
      metrics += JSON.stringify({
        step,
        time: new Date(Date.UTC(2026, 10, 23, 10, 1, step)).toISOString(),
        "eval/ndcg@10": 0.5 + step / 1000,
        "eval/mrr@10": 0.6 + step / 1000,
      }) + "\n";
    }
  }
  return {
    name,
    runJson: runJson(name, { step: steps }),
    config:
      "recipe: blockrank\nmodel:\n  name: mistral-tiny\n  lora:\n    r: 8\nlearning_rate: 0.0001\n",
    metrics,
    checkpoints: [
      {
        step: 50,
        files: {
          "adapter_model.safetensors": new Uint8Array(3000),
          "adapter_config.json": '{"r": 8}',
          "optimizer.safetensors": new Uint8Array(6000),
          "trainer_state.json": JSON.stringify({ step: 50, epoch: 0.5, best: null }),
        },
      },
      {
        step: 100,
        files: {
          "adapter_model.safetensors": new Uint8Array(3000),
          "adapter_config.json": '{"r": 8}',
          "optimizer.safetensors": new Uint8Array(6000),
          "trainer_state.json": JSON.stringify({ step: 100, epoch: 1.0 }),
        },
      },
    ],
    evals: [
      {
        step: 50,
        content: {
          step: 50,
          metrics: { "ndcg@10": 0.55, "mrr@10": 0.65 },
          per_query: { q1: { "ndcg@10": 0.5, "mrr@10": 1 }, q2: { "ndcg@10": 0.6, "mrr@10": 0.3 } },
        },
        runText: "q1 Q0 d1 1 2.5 blockrank\n",
      },
      {
        step: 100,
        content: {
          step: 100,
          metrics: { "ndcg@10": 0.61, "mrr@10": 0.7 },
          per_query: {
            q1: { "ndcg@10": 0.62, "mrr@10": 1 },
            q2: { "ndcg@10": 0.6, "mrr@10": 0.4 },
          },
        },
      },
    ],
  };
}

/** Creates a fresh temporary runs directory holding `runs`; returns its path. */
export async function makeRunsDir(runs: FixtureRun[]): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "irforge-dashboard-" });
  await writeRuns(root, runs);
  return root;
}

/** One metrics line with exactly the given values (no derived numbers). */
export function metricsLine(step: number, values: Record<string, number>): string {
  return JSON.stringify({
    step,
    time: new Date(Date.UTC(2026, 10, 24, 8, 0, step)).toISOString(),
    ...values,
  }) + "\n";
}

/**
 * A distill-style run as `trainDistill` writes it: a directory `name` with
 * no run files of its own, holding two complete runs `name/phase1`
 * (finished, steps 10 and 20) and `name/phase2` (running, steps 5 and 10),
 * each with its own `run.json`, `config.yaml`, `metrics.jsonl`, one
 * checkpoint and one evaluation. Values are fixed so tests can assert them.
 */
export function distillRuns(name: string): FixtureRun[] {
  const phase = (n: 1 | 2, overrides: Record<string, unknown>): unknown =>
    runJson(`${name}-phase${n}`, { recipe: "distill", ...overrides });
  return [
    {
      name: `${name}/phase1`,
      runJson: phase(1, {
        status: "finished",
        started_at: "2026-11-24T08:00:00.000Z",
        updated_at: "2026-11-24T08:30:00.000Z",
        finished_at: "2026-11-24T08:30:00.000Z",
        step: 20,
        total_steps: 20,
        best: null,
      }),
      config: "recipe: distill\nphase: 1\n",
      metrics: metricsLine(10, { "train/loss": 0.875, "train/distill_loss": 0.5 }) +
        metricsLine(20, { "train/loss": 0.625, "train/distill_loss": 0.25 }),
      checkpoints: [{ step: 20, files: { "model.safetensors": new Uint8Array(1234) } }],
      evals: [{ step: 20, content: { step: 20, metrics: { "ndcg@10": 0.4375 }, per_query: {} } }],
    },
    {
      name: `${name}/phase2`,
      runJson: phase(2, {
        status: "running",
        started_at: "2026-11-24T09:00:00.000Z",
        updated_at: "2026-11-24T09:10:00.000Z",
        step: 10,
        total_steps: 40,
        best: { metric: "eval/ndcg@10", value: 0.5625, step: 10 },
      }),
      config: "recipe: distill\nphase: 2\n",
      metrics: metricsLine(5, { "train/loss": 1.5, "train/infonce_loss": 1.25 }) +
        metricsLine(10, { "train/loss": 1.125, "eval/ndcg@10": 0.5625 }),
      checkpoints: [{ step: 10, files: { "model.safetensors": new Uint8Array(4321) } }],
      evals: [{
        step: 10,
        content: {
          step: 10,
          metrics: { "ndcg@10": 0.5625 },
          per_query: { q7: { "ndcg@10": 0.75 }, q8: { "ndcg@10": 0.375 } },
        },
      }],
    },
  ];
}
