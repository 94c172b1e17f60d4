/**
 * A per-op GPU profile of some recorded work (a training step): GPU
 * timestamps around every dispatch, grouped by the launch label — the
 * registered op that issued it (`linear`, `rms_norm.backward`; see
 * `op_label.ts`), or the kernel name for launches outside ops (the
 * optimizer, gradient accumulation). Rows are sorted by share of the total.
 *
 * On CPU adapters the times are meaningless but the machinery is the same:
 * `timedDispatches === dispatches` says the profile covers every dispatch.
 *
 * @example Profile a step and print it
 * ```ts ignore
 * import { formatOpProfile, profileOps } from "@irforge/tensor";
 * const profile = await profileOps(() => trainStep(), { maxDispatches: 4096 });
 * console.log(formatOpProfile(profile));
 * ```
 *
 * @module
 */

import { getRuntime } from "./runtime.ts";

/** One op's row of a profile. */
export interface OpProfileRow {
  /** Launch label: op name, `<op>.backward`, or a kernel name. */
  op: string;
  /** GPU milliseconds of its dispatches. */
  ms: number;
  /** Fraction of the profile's total GPU time (0…1). */
  share: number;
  /** Dispatches it issued. */
  dispatches: number;
  /** The kernels it launched (names). */
  kernels: string[];
}

/** What {@link profileOps} returns. */
export interface OpProfile {
  /** Sum of every timed dispatch, milliseconds. */
  totalMs: number;
  /** Dispatches recorded while profiling (the runtime's counter). */
  dispatches: number;
  /** Dispatches that got timestamps (equal to `dispatches` unless `maxDispatches` was short). */
  timedDispatches: number;
  /** Per-op rows, largest share first. */
  rows: OpProfileRow[];
}

/** Options of {@link profileOps}. */
export interface ProfileOptions {
  /**
   * Timestamp slots to reserve, in dispatches: size it from a step's dispatch
   * count (`runtimeCounters().dispatches` over a warm step); default 8192.
   */
  maxDispatches?: number;
}

/** Thrown when the adapter offers no `timestamp-query`. */
export class NoTimestampsError extends Error {
  /** Creates the error. */
  constructor() {
    super("profile: the GPU adapter does not offer timestamp-query, so dispatches cannot be timed");
    this.name = "NoTimestampsError";
  }
}

/** Groups `[label, ns, kernel]` spans into a profile (sorted by share, then name). */
export function summarizeSpans(
  spans: readonly (readonly [string, number, string])[],
  dispatches: number,
): OpProfile {
  const byOp = new Map<string, { ns: number; dispatches: number; kernels: Set<string> }>();
  let totalNs = 0;
  for (const [op, ns, kernel] of spans) {
    let row = byOp.get(op);
    if (!row) byOp.set(op, row = { ns: 0, dispatches: 0, kernels: new Set() });
    row.ns += ns;
    row.dispatches++;
    row.kernels.add(kernel);
    totalNs += ns;
  }
  const rows = [...byOp].map(([op, r]) => ({
    op,
    ms: r.ns / 1e6,
    share: totalNs > 0 ? r.ns / totalNs : 0,
    dispatches: r.dispatches,
    kernels: [...r.kernels].sort(),
  })).sort((a, b) => b.ms - a.ms || a.op.localeCompare(b.op));
  return { totalMs: totalNs / 1e6, dispatches, timedDispatches: spans.length, rows };
}

/** A profile being recorded: every dispatch from start to {@link OpProfileSession.stop}. */
export interface OpProfileSession {
  /** Stops timing and returns the profile of the dispatches recorded meanwhile. */
  stop(): Promise<OpProfile>;
}

/**
 * Starts timing every dispatch (for work that is not one function call, e.g.
 * a training loop's step); throws {@link NoTimestampsError} when the adapter
 * cannot time dispatches.
 */
export function startOpProfile(options: ProfileOptions = {}): OpProfileSession {
  const rt = getRuntime();
  if (!rt.startTiming(options.maxDispatches ?? 8192)) throw new NoTimestampsError();
  const before = rt.counters().dispatches;
  return {
    stop: async () => summarizeSpans(await rt.stopTiming(), rt.counters().dispatches - before),
  };
}

/**
 * Records `fn` (e.g. one training step) with a GPU timestamp around every
 * dispatch and returns the per-op profile. Throws {@link NoTimestampsError}
 * when the adapter cannot time dispatches.
 */
export async function profileOps(
  fn: () => void | Promise<void>,
  options: ProfileOptions = {},
): Promise<OpProfile> {
  const session = startOpProfile(options);
  try {
    await fn();
  } catch (error) {
    await session.stop();
    throw error;
  }
  return await session.stop();
}

/** The profile as a text table: op, ms, share, dispatches; a total line. */
export function formatOpProfile(profile: OpProfile, top = Infinity): string {
  const rows = profile.rows.slice(0, top);
  const width = Math.max(2, ...rows.map((r) => r.op.length));
  const lines = [
    `${"op".padEnd(width)}  ${"ms".padStart(10)}  ${"share".padStart(6)}  ${
      "dispatches".padStart(10)
    }`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.op.padEnd(width)}  ${r.ms.toFixed(3).padStart(10)}  ${
        (100 * r.share).toFixed(1).padStart(5)
      }%  ${String(r.dispatches).padStart(10)}`,
    );
  }
  if (rows.length < profile.rows.length) {
    lines.push(`… ${profile.rows.length - rows.length} more ops`);
  }
  const untimed = profile.dispatches - profile.timedDispatches;
  lines.push(
    `${"total".padEnd(width)}  ${profile.totalMs.toFixed(3).padStart(10)}  ${
      "100.0".padStart(5)
    }%  ${String(profile.timedDispatches).padStart(10)}` +
      (untimed > 0 ? `  (${untimed} dispatches untimed: raise maxDispatches)` : ""),
  );
  return lines.join("\n");
}
