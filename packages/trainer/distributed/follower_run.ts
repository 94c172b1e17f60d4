/**
 * The run directory as ranks other than 0 see it: the same path (rank 0
 * chose it), and nothing written — rank 0 alone writes `run.json`,
 * `metrics.jsonl`, evaluations and checkpoints, so the dashboard reads one
 * run, not one per rank.
 *
 * @module
 */

import type { BestMetric, CheckpointInfo, EvalResult, RunDir, TrainerState } from "../run_dir.ts";
import { listCheckpoints } from "../run_dir.ts";

/** The part of {@link RunDir} the training loop uses. */
export type RunWriter = Pick<
  RunDir,
  | "path"
  | "best"
  | "writeConfig"
  | "log"
  | "writeEval"
  | "beginCheckpoint"
  | "commitCheckpoint"
  | "listCheckpoints"
  | "finish"
>;

/** A {@link RunWriter} that writes nothing (ranks 1 … N−1). */
export class FollowerRun implements RunWriter {
  /** Rank 0's run directory. */
  readonly path: string;

  /** `path` is the directory rank 0 created or resumed. */
  constructor(path: string) {
    this.path = path;
  }

  /** Followers do not track the best metric (rank 0 writes `trainer_state.json`). */
  get best(): BestMetric | null {
    return null;
  }

  /** Nothing: rank 0 writes `config.yaml`. */
  writeConfig(_yamlText: string): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing: rank 0 writes `metrics.jsonl`. */
  log(_step: number, _metrics: Record<string, number>): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing: rank 0 writes `eval/`. */
  writeEval(_step: number, _result: EvalResult, _runText?: string): Promise<void> {
    return Promise.resolve();
  }

  /** Never called on followers by the loop; refuses so a misuse is loud. */
  beginCheckpoint(step: number): Promise<string> {
    return Promise.reject(new Error(`rank ≠ 0 must not write checkpoint ${step}`));
  }

  /** Never called on followers by the loop; refuses so a misuse is loud. */
  commitCheckpoint(step: number, _state: TrainerState): Promise<string> {
    return Promise.reject(new Error(`rank ≠ 0 must not commit checkpoint ${step}`));
  }

  /** Rank 0's checkpoints (read only). */
  listCheckpoints(): Promise<CheckpointInfo[]> {
    return listCheckpoints(this.path);
  }

  /** Nothing: rank 0 records how the run ended. */
  finish(_status: "finished" | "failed" | "interrupted", _error?: unknown): Promise<void> {
    return Promise.resolve();
  }
}
