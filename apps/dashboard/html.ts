/**
 * Server-rendered pages. Everything is built with hono's `html` tagged
 * template (imported as `markup`, so that `deno fmt` leaves the markup
 * alone), which escapes every interpolated value (`& < > " '`): run names,
 * config text and metric names from disk can never become markup. The
 * pages carry no inline script (the Content-Security-Policy forbids it);
 * the scripts under `/static/` read their inputs from `data-*` attributes.
 *
 * @module
 */

import { html as markup } from "hono/html";
import type { Checkpoint, EvalProblem, Evaluation, RunConfig, RunSummary } from "./runs.ts";
import { profileSection, type RunProfileView } from "./profile.ts";

/** What hono's `html` template returns. */
export type Html = ReturnType<typeof markup>;

/** Formats a byte count with binary units (`1.5 MiB`). */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Shows an ISO-8601 time as `YYYY-MM-DD HH:MM:SS` (UTC), or `—`. */
export function formatTime(iso: string | null): string {
  if (iso === null) return "—";
  const match = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(iso);
  return match ? `${match[1]} ${match[2]}` : iso;
}

/** Shows a metric value with up to 4 significant digits. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) {
    return value.toExponential(3).replace(/\.?0+e/, "e");
  }
  return String(Number(value.toPrecision(4)));
}

/**
 * The `/runs/<id>` link of a run: each part of the id percent-encoded, the
 * `/` of a nested id (`distill-x/phase1`) kept (then escaped by the template).
 */
export function runHref(name: string): string {
  return `/runs/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/** The page frame: header with navigation, `body` in `<main>`, optional module scripts. */
export function layout(
  title: string,
  body: Html,
  options: { scripts?: string[]; data?: Record<string, string> } = {},
): Html {
  const data = Object.entries(options.data ?? {}).map(([key, value]) =>
    markup` data-${key}="${value}"`
  );
  const scripts = (options.scripts ?? []).map((src) =>
    markup`<script type="module" src="${src}"></script>`
  );
  return markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · irforge</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
${scripts}
</head>
<body${data}>
<header class="top"><a class="brand" href="/">irforge</a><nav><a href="/">Runs</a><a href="/compare">Compare</a></nav></header>
<main>
${body}
</main>
</body>
</html>
`;
}

function statusBadge(status: string | null): Html {
  const known = status ?? "unknown";
  return markup`<span class="status status-${known}">${known}</span>`;
}

function bestText(best: RunSummary["best"]): string {
  return best === null ? "—" : `${best.metric} = ${formatValue(best.value)} @ ${best.step}`;
}

function stepsText(run: RunSummary): string {
  if (run.step === null) return "—";
  return run.total_steps === null ? `${run.step}` : `${run.step} / ${run.total_steps}`;
}

/** Whether a listed run can be opened (valid id, not a symlink leading outside). */
function openable(run: RunSummary): boolean {
  return run.valid_name && run.error !== OUTSIDE;
}

/**
 * One row of a runs table. Nested runs (`parent` set) get the class
 * `nested` (indented under their parent); groups show how many runs they hold.
 */
function runRow(run: RunSummary): Html {
  const name = openable(run) ? markup`<a href="${runHref(run.name)}">${run.name}</a>` : run.name;
  const count = run.kind === "group"
    ? markup` <span class="muted">(${run.children.length} run${
      run.children.length === 1 ? "" : "s"
    })</span>`
    : "";
  const error = run.error === null ? "" : markup`<div class="error">${run.error}</div>`;
  const classes = run.parent === null ? (run.kind === "group" ? "top group" : "top") : "nested";
  const parent = run.parent === null ? "" : markup` data-parent="${run.parent}"`;
  return markup`<tr class="${classes}" data-run="${run.name}"${parent}>
<td>${name}${count}${error}</td>
<td>${run.recipe ?? "—"}</td>
<td>${statusBadge(run.status)}</td>
<td>${formatTime(run.started_at)}</td>
<td class="num">${stepsText(run)}</td>
<td>${bestText(run.best)}</td>
</tr>`;
}

function runsTable(runs: RunSummary[]): Html {
  return markup`<table class="runs">
<thead><tr><th>Name</th><th>Recipe</th><th>Status</th><th>Started (UTC)</th><th class="num">Steps</th><th>Best</th></tr></thead>
<tbody>${runs.map(runRow)}</tbody>
</table>`;
}

/**
 * The runs list: name, recipe, status, started, steps, best metric. Runs
 * nested in another directory follow it, indented (as `listRuns` orders them).
 */
export function runsPage(runsDir: string, runs: RunSummary[]): Html {
  const table = runs.length === 0
    ? markup`<p class="empty">No runs in <code>${runsDir}</code> yet.</p>`
    : runsTable(runs);
  return layout(
    "Runs",
    markup`<h1>Runs</h1>
<p class="muted">Runs directory: <code>${runsDir}</code> · <a href="/compare">compare runs</a></p>
${table}`,
  );
}

/** The "part of" line of a nested run, linking to its parent. */
function parentLine(summary: RunSummary): Html | string {
  if (summary.parent === null) return "";
  return markup`<p class="muted parent">Part of <a href="${
    runHref(summary.parent)
  }">${summary.parent}</a></p>`;
}

/** The runs nested in a run or group, as a runs table. */
function nestedSection(nested: RunSummary[]): Html | string {
  if (nested.length === 0) return "";
  return markup`<section id="nested"><h2>Runs inside</h2>${runsTable(nested)}</section>`;
}

/**
 * The page of a group (a directory holding nested runs but no run files of
 * its own, such as a distill run's `phase1/`, `phase2/`): its summary from
 * the nested runs, and their table.
 */
export function groupPage(summary: RunSummary, nested: RunSummary[]): Html {
  const compare = nested.filter(openable).map((run) => `runs=${encodeURIComponent(run.name)}`);
  const body = markup`<h1>${summary.name}</h1>
<p class="muted">A directory of ${nested.length} run${nested.length === 1 ? "" : "s"}${
    compare.length > 1
      ? markup` · <a href="${`/compare?${compare.join("&")}`}">compare them</a>`
      : ""
  }</p>
<dl class="summary">
<div><dt>Recipe</dt><dd>${summary.recipe ?? "—"}</dd></div>
<div><dt>Status</dt><dd id="run-status">${statusBadge(summary.status)}</dd></div>
<div><dt>Started (UTC)</dt><dd>${formatTime(summary.started_at)}</dd></div>
<div><dt>Updated (UTC)</dt><dd id="run-updated">${formatTime(summary.updated_at)}</dd></div>
</dl>
${nestedSection(nested)}`;
  return layout(summary.name, body, { data: { group: summary.name } });
}

/** The error `listRuns` gives a symlink leading outside the runs directory. */
const OUTSIDE = "points outside the runs directory";

function evalSection(evaluations: Evaluation[], errors: EvalProblem[]): Html {
  const problems = errors.length === 0
    ? ""
    : markup`<ul class="errors">${errors.map((e) => markup`<li>${e.error}</li>`)}</ul>`;
  if (evaluations.length === 0) {
    return markup`<section id="eval"><h2>Evaluations</h2><p class="empty">No evaluations yet.</p>${problems}</section>`;
  }
  const columns = [...new Set(evaluations.flatMap((e) => Object.keys(e.metrics)))].sort();
  const rows = evaluations.map((e) => {
    const cells = columns.map((c) =>
      markup`<td class="num">${c in e.metrics ? formatValue(e.metrics[c]!) : "—"}</td>`
    );
    const button = e.queries > 0
      ? markup`<button type="button" class="per-query" data-step="${e.step}">per query</button>`
      : "";
    const runFile = e.has_run
      ? markup` <span class="muted">eval/step-${e.step}.run.txt</span>`
      : "";
    return markup`<tr data-step="${e.step}"><td class="num">${e.step}</td>${cells}<td class="num">${e.queries}</td><td>${button}${runFile}</td></tr>`;
  });
  return markup`<section id="eval"><h2>Evaluations</h2>
<table class="eval">
<thead><tr><th class="num">Step</th>${
    columns.map((c) => markup`<th class="num">${c}</th>`)
  }<th class="num">Queries</th><th></th></tr></thead>
<tbody>${rows}</tbody>
</table>
<div id="per-query"></div>
${problems}
</section>`;
}

function checkpointSection(checkpoints: Checkpoint[]): Html {
  if (checkpoints.length === 0) {
    return markup`<section id="checkpoints"><h2>Checkpoints</h2><p class="empty">No checkpoints yet.</p></section>`;
  }
  const rows = checkpoints.map((c) => {
    const files = c.files.map((f) =>
      markup`<li><code>${f.name}</code> <span class="muted">${formatBytes(f.bytes)}</span></li>`
    );
    const error = c.error === null ? "" : markup`<div class="error">${c.error}</div>`;
    return markup`<tr>
<td><code>checkpoints/${c.name}</code></td>
<td class="num">${c.step}</td>
<td class="num">${formatBytes(c.bytes)}</td>
<td><details><summary>${c.files.length} file(s)</summary><ul class="files">${files}</ul></details>${error}</td>
</tr>`;
  });
  return markup`<section id="checkpoints"><h2>Checkpoints</h2>
<table class="checkpoints">
<thead><tr><th>Checkpoint</th><th class="num">Step</th><th class="num">Size</th><th>Files</th></tr></thead>
<tbody>${rows}</tbody>
</table></section>`;
}

function configSection(config: RunConfig | null): Html {
  if (config === null) {
    return markup`<section id="config"><h2>Configuration</h2><p class="empty">No <code>config.yaml</code>.</p></section>`;
  }
  const error = config.error === null ? "" : markup`<p class="error">${config.error}</p>`;
  return markup`<section id="config"><h2>Configuration <span class="muted">config.yaml</span></h2>
${error}
<pre class="config">${config.text}</pre></section>`;
}

/** Everything the run page shows. */
export interface RunPageData {
  /** The run summary from `run.json`. */
  summary: RunSummary;
  /** `config.yaml`, or `null` when absent. */
  config: RunConfig | null;
  /** Checkpoints by step. */
  checkpoints: Checkpoint[];
  /** Evaluations by step. */
  evaluations: Evaluation[];
  /** Eval files that could not be read. */
  evalErrors: EvalProblem[];
  /** Summaries of the runs nested in this one (usually none). */
  nested?: RunSummary[];
  /** `profile.json` (`training.profile_steps`), when the run has one. */
  profile?: RunProfileView;
}

/** The run page: summary, live charts (filled by `run.js`), evals, checkpoints, config. */
export function runPage(data: RunPageData): Html {
  const { summary } = data;
  const error = summary.error === null ? "" : markup`<p class="error">${summary.error}</p>`;
  const body = markup`<h1>${summary.name}</h1>
${parentLine(summary)}
${error}
<dl class="summary">
<div><dt>Recipe</dt><dd>${summary.recipe ?? "—"}</dd></div>
<div><dt>Status</dt><dd id="run-status">${statusBadge(summary.status)}</dd></div>
<div><dt>Steps</dt><dd id="run-steps">${stepsText(summary)}</dd></div>
<div><dt>Started (UTC)</dt><dd>${formatTime(summary.started_at)}</dd></div>
<div><dt>Updated (UTC)</dt><dd id="run-updated">${formatTime(summary.updated_at)}</dd></div>
<div><dt>Best</dt><dd id="run-best">${bestText(summary.best)}</dd></div>
<div><dt>WebGPU</dt><dd id="run-device">${summary.device ?? "—"}</dd></div>
</dl>
<section id="metrics"><h2>Metrics <span id="live" class="live" data-state="connecting">connecting…</span></h2>
<p id="pending" class="muted" hidden></p>
<div id="charts" class="charts" data-records="0"></div>
<p id="no-metrics" class="empty">No metrics yet.</p>
<div id="malformed-section" hidden><h3>Malformed lines in <code>metrics.jsonl</code></h3><ul id="malformed" class="errors" data-count="0"></ul></div>
</section>
${nestedSection(data.nested ?? [])}
${profileSection(data.profile ?? { profile: null, error: null })}
${evalSection(data.evaluations, data.evalErrors)}
${checkpointSection(data.checkpoints)}
${configSection(data.config)}`;
  return layout(summary.name, body, {
    scripts: ["/static/run.js"],
    data: { run: summary.name },
  });
}

/** The compare page: pick runs and a metric; `compare.js` draws them on one chart. */
export function comparePage(runs: RunSummary[], selected: string[], metric: string): Html {
  const choices = runs.filter((run) => openable(run) && run.kind === "run");
  const boxes = choices.map((run) => {
    const checked = selected.includes(run.name) ? markup` checked` : "";
    return markup`<label class="pick"><input type="checkbox" name="runs" value="${run.name}"${checked}> ${run.name} <span class="muted">${
      run.recipe ?? ""
    }</span></label>`;
  });
  const option = metric === "" ? "" : markup`<option value="${metric}" selected>${metric}</option>`;
  const body = markup`<h1>Compare runs</h1>
<form id="compare-form" method="get" action="/compare">
<fieldset><legend>Runs</legend>${
    choices.length === 0 ? markup`<p class="empty">No runs.</p>` : boxes
  }</fieldset>
<label>Metric <select id="metric" name="metric">${option}</select></label>
<noscript><button type="submit">Show</button></noscript>
</form>
<p id="compare-status" class="muted"></p>
<div id="charts" class="charts compare"></div>`;
  return layout("Compare", body, { scripts: ["/static/compare.js"], data: { metric } });
}

/** A small error page (status shown by the caller). */
export function errorPage(status: number, message: string): Html {
  return layout(
    `Error ${status}`,
    markup`<h1>Error ${status}</h1><p class="error">${message}</p><p><a href="/">Back to the runs</a></p>`,
  );
}
