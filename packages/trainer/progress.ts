/**
 * Training progress on the terminal: on a TTY one bar line updated in place
 * (step/total, loss, lr, tokens/s, ETA); otherwise (logs, CI) a plain line
 * every `logging_steps`. The formatting is pure functions; the writer is thin.
 *
 * @module
 */

/** Seconds as a short duration: `45s`, `3m12s`, `1h02m`, `2d03h`; `?` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** A count with an SI suffix and 3 significant digits: `950`, `5.40k`, `1.23M`. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs < 1000) return String(Math.round(n));
  for (const [limit, suffix] of [[1e6, "k"], [1e9, "M"], [1e12, "G"]] as const) {
    const scaled = n / (limit / 1000);
    // Round first so that 999 950 shows as 1.00M, not 1000k.
    if (Math.abs(Number(scaled.toPrecision(3))) < 1000) return `${scaled.toPrecision(3)}${suffix}`;
  }
  return `${(n / 1e12).toPrecision(3)}T`;
}

/** A learning rate in compact scientific notation: `1.00e-4`, `0` for zero. */
export function formatLearningRate(lr: number): string {
  if (lr === 0) return "0";
  return lr.toExponential(2).replace("e+", "e");
}

/** A loss with 4 significant digits (`2.310`, `0.01234`), `nan`/`inf` when it diverged. */
export function formatLoss(loss: number): string {
  if (Number.isNaN(loss)) return "nan";
  if (!Number.isFinite(loss)) return loss > 0 ? "inf" : "-inf";
  return loss.toPrecision(4);
}

/** A bar of `width` cells filled to `fraction` (clamped to [0, 1]): `[#####.....]`. */
export function progressBar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.floor(f * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** What one progress line shows. */
export interface ProgressStats {
  /** Optimizer steps done. */
  step: number;
  /** Planned optimizer steps. */
  total: number;
  /** Latest training loss. */
  loss?: number;
  /** Current learning rate. */
  lr?: number;
  /** Throughput. */
  tokensPerSecond?: number;
  /** Estimated seconds left. */
  etaSeconds?: number;
}

/**
 * One progress line: `step 120/500 loss 2.310 lr 1.00e-4 5.40k tok/s ETA 3m12s`,
 * prefixed with a bar of `barWidth` cells when given.
 */
export function formatProgressLine(stats: ProgressStats, barWidth = 0): string {
  const parts: string[] = [];
  if (barWidth > 0) parts.push(progressBar(stats.step / stats.total, barWidth));
  const digits = String(stats.total).length;
  parts.push(`step ${String(stats.step).padStart(digits)}/${stats.total}`);
  if (stats.loss !== undefined) parts.push(`loss ${formatLoss(stats.loss)}`);
  if (stats.lr !== undefined) parts.push(`lr ${formatLearningRate(stats.lr)}`);
  if (stats.tokensPerSecond !== undefined) {
    parts.push(`${formatCount(stats.tokensPerSecond)} tok/s`);
  }
  if (stats.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(stats.etaSeconds)}`);
  return parts.join(" ");
}

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Planned optimizer steps. */
  total: number;
  /** Non-TTY: print a line every this many steps (and at the last step). */
  loggingSteps: number;
  /** Step the run starts from (a resumed run), for rate and ETA. */
  startStep?: number;
  /** Whether to draw an updating bar (default: `Deno.stdout.isTerminal()`). */
  tty?: boolean;
  /** Output (default: stdout). */
  write?: (text: string) => void;
  /** Clock in milliseconds (default: `performance.now`). */
  now?: () => number;
}

/** Reports training progress; call {@linkcode Progress.update} after each optimizer step. */
export class Progress {
  #options: Required<ProgressOptions>;
  #startTime: number;
  #tokens = 0;
  #drawn = false;

  /** Starts the clock. */
  constructor(options: ProgressOptions) {
    const encoder = new TextEncoder();
    this.#options = {
      startStep: 0,
      tty: Deno.stdout.isTerminal(),
      write: (text) => Deno.stdout.writeSync(encoder.encode(text)),
      now: () => performance.now(),
      ...options,
    };
    this.#startTime = this.#options.now();
  }

  /** The statistics for `step`, given the tokens processed since the last call. */
  stats(step: number, values: { loss?: number; lr?: number; tokens?: number }): ProgressStats {
    this.#tokens += values.tokens ?? 0;
    const elapsed = (this.#options.now() - this.#startTime) / 1000;
    const done = step - this.#options.startStep;
    const stats: ProgressStats = {
      step,
      total: this.#options.total,
      loss: values.loss,
      lr: values.lr,
    };
    if (elapsed > 0 && done > 0) {
      if (values.tokens !== undefined) stats.tokensPerSecond = this.#tokens / elapsed;
      stats.etaSeconds = (elapsed / done) * Math.max(0, this.#options.total - step);
    }
    return stats;
  }

  /** Reports optimizer step `step` (counting from 1). */
  update(step: number, values: { loss?: number; lr?: number; tokens?: number }): void {
    const stats = this.stats(step, values);
    const { tty, write, loggingSteps, total } = this.#options;
    if (tty) {
      // \r returns to the line start; \x1b[K clears what a longer previous line left.
      write(`\r${formatProgressLine(stats, 24)}\x1b[K`);
      this.#drawn = true;
    } else if (step % loggingSteps === 0 || step === total) {
      write(formatProgressLine(stats) + "\n");
    }
  }

  /** Ends the bar line (TTY) so later output starts on a fresh line. */
  finish(): void {
    if (this.#drawn) this.#options.write("\n");
    this.#drawn = false;
  }
}
