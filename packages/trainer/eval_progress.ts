/**
 * Evaluation progress as log lines: how many queries, documents or answers
 * are done, the rate and the time left, like training's progress lines.
 * Lines are throttled (the first item, then at most one line per interval,
 * then a final line) so that a long evaluation shows it is moving and a
 * short one stays at two lines.
 *
 * @example Encoding a corpus
 * ```ts
 * import { EvalProgress } from "@irforge/trainer";
 *
 * const progress = new EvalProgress({ what: "documents", total: 5183, log: console.log });
 * for (let done = 64; done < 5183; done += 64) progress.update(done);
 * progress.update(5183); // "eval: documents 5183/5183 in 1m37s (53.4/s)"
 * ```
 *
 * @module
 */

import { formatCount, formatDuration } from "./progress.ts";

/** Options of {@linkcode EvalProgress}. */
export interface EvalProgressOptions {
  /** What is counted, plural: `queries`, `documents`, `answers`. */
  what: string;
  /** How many there are. */
  total: number;
  /** Where lines go (the recipe's `log`). */
  log: (line: string) => void;
  /** Least milliseconds between two lines before the last (default 5000). */
  intervalMs?: number;
  /** Clock in milliseconds (default: `performance.now`). */
  now?: () => number;
  /** When the work began, on that clock (default: now). */
  start?: number;
}

/** A rate with 3 significant digits: `0.412/s`, `53.4/s`, `1.23k/s`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return "?/s";
  if (perSecond >= 1000) return `${formatCount(perSecond)}/s`;
  if (perSecond === 0) return "0/s";
  return `${Number(perSecond.toPrecision(3))}/s`;
}

/** Reports the progress of one evaluation pass; call {@linkcode EvalProgress.update} as items finish. */
export class EvalProgress {
  #options: Required<Omit<EvalProgressOptions, "start">>;
  #start: number;
  #lastLine: number | null = null;
  #finished = false;

  /** Starts the clock. */
  constructor(options: EvalProgressOptions) {
    this.#options = { intervalMs: 5000, now: () => performance.now(), ...options };
    this.#start = options.start ?? this.#options.now();
  }

  /** `done` of the total are finished (counts only grow); logs when a line is due. */
  update(done: number): void {
    if (this.#finished) return;
    const { what, total, log, intervalMs, now } = this.#options;
    const time = now();
    const seconds = (time - this.#start) / 1000;
    const rate = seconds > 0 ? done / seconds : Infinity;
    const count = `eval: ${what} ${done}/${total}`;
    if (done >= total) {
      this.#finished = true;
      log(`${count} in ${formatDuration(seconds)} (${formatRate(rate)})`);
      return;
    }
    // The first finished item gives the first ETA; later lines wait for the interval.
    if (this.#lastLine !== null && time - this.#lastLine < intervalMs) return;
    this.#lastLine = time;
    const percent = total > 0 ? Math.floor((100 * done) / total) : 0;
    const eta = rate > 0 && Number.isFinite(rate) ? (total - done) / rate : NaN;
    log(`${count} (${percent}%) ${formatRate(rate)} ETA ${formatDuration(eta)}`);
  }
}

/**
 * A `(phase, done, total)` callback, as `evaluateRetriever` reports, that
 * keeps one {@linkcode EvalProgress} per phase (`documents`, then `queries`).
 * The first phase is timed from this call, each later one from the previous
 * phase's last report.
 */
export function phasedEvalProgress(
  log: (line: string) => void,
  options: Omit<EvalProgressOptions, "what" | "total" | "log" | "start"> = {},
): (phase: string, done: number, total: number) => void {
  const now = options.now ?? (() => performance.now());
  let last = now();
  let current: { phase: string; progress: EvalProgress } | null = null;
  return (phase, done, total) => {
    if (current?.phase !== phase) {
      const progress = new EvalProgress({ ...options, now, what: phase, total, log, start: last });
      current = { phase, progress };
    }
    current.progress.update(done);
    last = now();
  };
}

/** A `(done)` callback over a new {@linkcode EvalProgress} of `total` `what`. */
export function evalProgress(
  what: string,
  total: number,
  log: (line: string) => void,
  options: Omit<EvalProgressOptions, "what" | "total" | "log"> = {},
): (done: number) => void {
  const progress = new EvalProgress({ ...options, what, total, log });
  return (done) => progress.update(done);
}
