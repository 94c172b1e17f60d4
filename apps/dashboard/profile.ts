/**
 * The run page's "GPU time per op" section: `profile.json`, written once by
 * the trainer when `training.profile_steps` is set (one optimizer step timed
 * dispatch by dispatch and grouped by the op that issued each), drawn as a
 * server-rendered SVG bar chart — one bar per op, longest first, labelled
 * with milliseconds, share and dispatch count.
 *
 * @module
 */

import { html as markup } from "hono/html";
import type { Html } from "./html.ts";
import { resolveInsideOrNull, runSegments } from "./safe_paths.ts";

/** One bar. */
export interface ProfileRow {
  /** Op (or kernel) name. */
  op: string;
  /** GPU milliseconds. */
  ms: number;
  /** Fraction of the step's GPU time. */
  share: number;
  /** Dispatches. */
  dispatches: number;
}

/** `profile.json` as the page uses it, or the reason it could not be read. */
export interface RunProfileView {
  /** The profile, or `null` when absent or unreadable. */
  profile: { step: number; totalMs: number; dispatches: number; rows: ProfileRow[] } | null;
  /** One sentence naming the file and field when it does not parse. */
  error: string | null;
}

/** Most bars drawn; the rest are summed into one "other ops" bar. */
export const MAX_BARS = 30;

/** Reads `<run>/profile.json` (absent: no profile, no error). */
export async function readProfile(root: string, name: string): Promise<RunProfileView> {
  const path = await resolveInsideOrNull(root, [...runSegments(name), "profile.json"]);
  if (path === null) return { profile: null, error: null };
  const where = `${name}/profile.json`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    return { profile: null, error: `${where}: ${(error as Error).message}` };
  }
  const p = parsed as Record<string, unknown>;
  const num = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  for (const field of ["step", "totalMs", "dispatches"]) {
    if (!num(p?.[field])) {
      return { profile: null, error: `${where}: field "${field}" is not a number` };
    }
  }
  if (!Array.isArray(p.rows)) {
    return { profile: null, error: `${where}: field "rows" is not a list` };
  }
  const rows: ProfileRow[] = [];
  for (const [i, r] of (p.rows as Record<string, unknown>[]).entries()) {
    if (typeof r?.op !== "string" || !num(r.ms) || !num(r.share) || !num(r.dispatches)) {
      return { profile: null, error: `${where}: rows[${i}] needs op, ms, share and dispatches` };
    }
    rows.push({
      op: r.op,
      ms: r.ms as number,
      share: r.share as number,
      dispatches: r.dispatches as number,
    });
  }
  rows.sort((a, b) => b.ms - a.ms);
  return {
    profile: {
      step: p.step as number,
      totalMs: p.totalMs as number,
      dispatches: p.dispatches as number,
      rows,
    },
    error: null,
  };
}

/** The bars to draw: the top {@link MAX_BARS} − 1 ops and one bar for the rest. */
export function profileBars(rows: readonly ProfileRow[]): ProfileRow[] {
  if (rows.length <= MAX_BARS) return [...rows];
  const top = rows.slice(0, MAX_BARS - 1);
  const rest = rows.slice(MAX_BARS - 1);
  return [...top, {
    op: `${rest.length} other ops`,
    ms: rest.reduce((s, r) => s + r.ms, 0),
    share: rest.reduce((s, r) => s + r.share, 0),
    dispatches: rest.reduce((s, r) => s + r.dispatches, 0),
  }];
}

const LABEL_W = 220, BAR_W = 420, ROW_H = 18, TEXT_W = 220;

/** The section (empty string when the run has no profile). */
export function profileSection(view: RunProfileView): Html | string {
  if (view.error !== null) {
    return markup`<section id="profile"><h2>GPU time per op</h2><p class="error">${view.error}</p></section>`;
  }
  const profile = view.profile;
  if (profile === null) return "";
  const bars = profileBars(profile.rows);
  const max = Math.max(...bars.map((b) => b.ms), 1e-12);
  const height = bars.length * ROW_H + 4;
  const rows = bars.map((b, i) => {
    const y = i * ROW_H + 2;
    const w = Math.max(1, (b.ms / max) * BAR_W);
    return markup`<g class="profile-bar" data-op="${b.op}" data-ms="${b.ms}">
<text x="${LABEL_W - 6}" y="${y + 13}" text-anchor="end">${b.op}</text>
<rect x="${LABEL_W}" y="${y + 2}" width="${w.toFixed(1)}" height="${ROW_H - 4}"></rect>
<text x="${LABEL_W + w + 6}" y="${y + 13}" class="muted">${b.ms.toFixed(3)} ms · ${
      (100 * b.share).toFixed(1)
    }% · ${b.dispatches}×</text>
</g>`;
  });
  return markup`<section id="profile"><h2>GPU time per op <span class="muted">step ${profile.step}, ${profile.dispatches} dispatches, ${
    profile.totalMs.toFixed(2)
  } ms</span></h2>
<svg class="profile-chart" role="img" aria-label="GPU time per op" viewBox="0 0 ${
    LABEL_W + BAR_W + TEXT_W
  } ${height}" width="${LABEL_W + BAR_W + TEXT_W}" height="${height}">${rows}</svg>
</section>`;
}
