/**
 * Timings the kernel lab can trust: warm-up first, then at least
 * {@link MIN_REPS} runs, each figure the median with min and max; GPU
 * timestamps (per dispatch, optionally only the dispatches of one kernel)
 * when the device has them, and for work longer than
 * {@link CROSS_CHECK_MS} a wall-clock measurement of the same work beside
 * them, with a flag when the two disagree by more than
 * {@link DISAGREEMENT_LIMIT}.
 *
 * @example
 * ```ts ignore
 * const t = await timeRecorded(() => noGrad(() => tidy(() => void matmul(a, b))), { reps: 10 });
 * console.log(formatTiming(t));
 * ```
 *
 * @module
 */

import { getRuntime } from "../runtime.ts";

/** Fewest timed runs behind a figure. */
export const MIN_REPS = 10;
/** Work at least this long (ms) is also timed by wall clock. */
export const CROSS_CHECK_MS = 5;
/** Relative GPU-vs-wall difference above which a timing is flagged. */
export const DISAGREEMENT_LIMIT = 0.2;

/** Options of {@link timeRecorded}. */
export interface TimingOptions {
  /** Timed runs (at least {@link MIN_REPS}; default {@link MIN_REPS}). */
  reps?: number;
  /** Untimed runs first (pipelines, pool, clocks; default 2). */
  warmup?: number;
  /** Only the dispatches of this kernel count (GPU timestamps; default all). */
  kernel?: string;
  /** Most dispatches one run records (timestamp query slots; default 512). */
  maxDispatches?: number;
}

/** A timing: median, min and max over the timed runs, and how it was taken. */
export interface Timing {
  /** Median milliseconds of one run. */
  medianMs: number;
  /** Fastest run. */
  minMs: number;
  /** Slowest run. */
  maxMs: number;
  /** Timed runs. */
  reps: number;
  /** Where the figure comes from. */
  source: "gpu-timestamps" | "wall-clock";
  /** Wall clock of one run (runs recorded back to back, one wait), when cross-checked. */
  wallMs?: number;
  /** |gpu − wall| / max(gpu, wall), when cross-checked. */
  disagreement?: number;
  /** True when the cross-check disagreement exceeds {@link DISAGREEMENT_LIMIT}. */
  flagged: boolean;
}

/** Median of `values` (the mean of the middle two for even counts). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Times the GPU work `record` records (it must not read back). With
 * timestamps, each run is the sum of its dispatches' spans; without, the
 * wall time from recording to completion.
 */
export async function timeRecorded(
  record: () => void,
  options: TimingOptions = {},
): Promise<Timing> {
  const reps = Math.max(MIN_REPS, options.reps ?? MIN_REPS);
  const warmup = Math.max(1, options.warmup ?? 2);
  const rt = getRuntime();
  for (let i = 0; i < warmup; i++) record();
  await rt.sync();
  const samples: number[] = [];
  let source: Timing["source"] = "wall-clock";
  for (let i = 0; i < reps; i++) {
    if (rt.startTiming(options.maxDispatches ?? 512)) {
      source = "gpu-timestamps";
      record();
      const spans = await rt.stopTiming();
      const counted = options.kernel ? spans.filter(([, , k]) => k === options.kernel) : spans;
      samples.push(counted.reduce((s, [, ns]) => s + ns, 0) / 1e6);
    } else {
      const t0 = performance.now();
      record();
      await rt.sync();
      samples.push(performance.now() - t0);
    }
  }
  const timing: Timing = {
    medianMs: median(samples),
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    reps,
    source,
    flagged: false,
  };
  // Cross-check long GPU-timestamped work against the wall clock: runs back
  // to back, one wait, so submit latency is amortised.
  if (source === "gpu-timestamps" && timing.medianMs >= CROSS_CHECK_MS && !options.kernel) {
    await rt.sync();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) record();
    await rt.sync();
    const wallMs = (performance.now() - t0) / reps;
    const disagreement = Math.abs(timing.medianMs - wallMs) / Math.max(timing.medianMs, wallMs);
    Object.assign(timing, { wallMs, disagreement, flagged: disagreement > DISAGREEMENT_LIMIT });
  }
  return timing;
}

/** `12.3 ms (min 12.1, max 12.9, 10 runs, gpu)` plus the wall-clock cross-check when taken. */
export function formatTiming(t: Timing): string {
  const digits = t.medianMs < 1 ? 4 : 3;
  let text = `${t.medianMs.toFixed(digits)} ms (min ${t.minMs.toFixed(digits)}, max ${
    t.maxMs.toFixed(digits)
  }, ${t.reps} runs, ${t.source === "gpu-timestamps" ? "gpu" : "wall"})`;
  if (t.wallMs !== undefined) {
    text += `; wall ${t.wallMs.toFixed(digits)} ms${
      t.flagged ? ` — DISAGREES by ${(100 * t.disagreement!).toFixed(0)}%` : ""
    }`;
  }
  return text;
}
