/**
 * Server-rendered pages. Everything is built with hono's `html` tagged
 * template, which escapes every interpolated value (`& < > " '`), so run
 * names, config text and metric names from disk can never become markup.
 * The pages carry no inline script (the Content-Security-Policy forbids
 * it); the scripts under `/static/` read their inputs from `data-*`
 * attributes.
 *
 * @module
 */

import { html } from "hono/html";
import type { Checkpoint, EvalProblem, Evaluation, RunConfig, RunSummary } from "./runs.ts";

/** What hono's `html` template returns. */
export type Html = ReturnType<typeof html>;

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

/** The `/runs/<name>` link of a run (name percent-encoded, then escaped by the template). */
export function runHref(name: string): string {
  return `/runs/${encodeURIComponent(name)}`;
}

/** The page frame: header with navigation, `body` in `<main>`, optional module scripts. */
export function layout(
  title: string,
  body: Html,
  options: { scripts?: string[]; data?: Record<string, string> } = {},
): Html {
  const data = Object.entries(options.data ?? {}).map(([key, value]) =>
    html`
      data-${key}="${value}"
    `
  );
  return html`
    <!doctype html>
    <html lang="en">
      <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${title} · irforge</title>
    <link rel="stylesheet" href="/static/style.css">
    ${(options.scripts ?? []).map((src) => html`<script type="module" src="${src}"></script>`)}
      </head>
      <body${data}>
        <header
          class="top"><a class="brand" href="/">irforge</a><nav><a href="/">Runs</a><a href="/compare">Compare</a></nav></header>
        <main>
    ${body}
        </main>
        </body>
        </html>
  `;
}

function statusBadge(status: string | null): Html {
  const known = status ?? "unknown";
  return html`<span class="status status-${known}">${known}</span>`;
}

function bestText(best: RunSummary["best"]): string {
  return best === null ? "—" : `${best.metric} = ${formatValue(best.value)} @ ${best.step}`;
}

function stepsText(run: RunSummary): string {
  if (run.step === null) return "—";
  return run.total_steps === null ? `${run.step}` : `${run.step} / ${run.total_steps}`;
}

/** The runs list: name, recipe, status, started, steps, best metric. */
export function runsPage(runsDir: string, runs: RunSummary[]): Html {
  const rows = runs.map((run) =>
    html`
      <tr data-run="${run.name}">
        <td>${run.valid_name
          ? html`<a href="${runHref(run.name)}">${run.name}</a>`
          : run.name}${run.error === null ? "" : html`<div class="error">${run.error}</div>`}</td>
        <td>${run.recipe ?? "—"}</td>
        <td>${statusBadge(run.status)}</td>
        <td>${formatTime(run.started_at)}</td>
        <td class="num">${stepsText(run)}</td>
        <td>${bestText(run.best)}</td>
      </tr>
    `
  );
  const table = runs.length === 0
    ? html`<p class="empty">No runs in <code>${runsDir}</code> yet.</p>`
    : html`
      <table class="runs">
        <thead>
          <tr>
            <th>Name</th>
            <th>Recipe</th>
            <th>Status</th>
            <th>Started (UTC)</th>
            <th>Steps</th>
            <th>Best</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    `;
  return layout(
    "Runs",
    html`<h1>Runs</h1>
<p class="muted">Runs directory: <code>${runsDir}</code></p>
${table}`,
  );
}

function evalSection(name: string, evaluations: Evaluation[], errors: EvalProblem[]): Html {
  const columns = [...new Set(evaluations.flatMap((e) => Object.keys(e.metrics)))].sort();
  const problems = errors.length === 0
    ? ""
    : html`<ul class="errors">${errors.map((e) => html`<li>${e.error}</li>`)}</ul>`;
  if (evaluations.length === 0) {
    return html`<section id="eval"><h2>Evaluations</h2><p class="empty">No evaluations yet.</p>${problems}</section>`;
  }
  const rows = evaluations.map((e) =>
    html`<tr data-step="${e.step}">
<td class="num">${e.step}</td>
${
      columns.map((c) =>
        html`<td class="num">${c in e.metrics ? formatValue(e.metrics[c]!) : "—"}</td>`
      )
    }
<td class="num">${e.queries}</td>
<td>${
      e.queries > 0
        ? html`<button type="button" class="per-query" data-step="${e.step}">per query</button>`
        : ""
    }${
      e.has_run
        ? html`
          <span class="muted">run: eval/step-${e.step}.run.txt</span>
        `
        : ""
    }</td>
</tr>`
  );
  return html`<section id="eval" data-run="${name}"><h2>Evaluations</h2>
<table class="eval">
<thead><tr><th>Step</th>${
    columns.map((c) => html`<th>${c}</th>`)
  }<th>Queries</th><th></th></tr></thead>
<tbody>${rows}</tbody>
</table>
<div id="per-query"></div>
${problems}
</section>`;
}

function checkpointSection(checkpoints: Checkpoint[]): Html {
  if (checkpoints.length === 0) {
    return html`
      <section id="checkpoints">
        <h2>Checkpoints</h2>
        <p class="empty">No checkpoints yet.</p>
      </section>
    `;
  }
  const rows = checkpoints.map((c) =>
    html`
      <tr>
        <td><code>checkpoints/${c.name}</code></td>
        <td class="num">${c.step}</td>
        <td class="num">${formatBytes(c.bytes)}</td>
        <td><details><summary>${c.files.length} file(s)</summary><ul class="files">${c.files.map((
          f,
        ) =>
          html`<li><code>${f.name}</code> ${formatBytes(f.bytes)}</li>`
        )}</ul></details>${c.error === null ? "" : html`<div class="error">${c.error}</div>`}</td>
      </tr>
    `
  );
  return html`
    <section id="checkpoints">
      <h2>Checkpoints</h2>
      <table class="checkpoints">
        <thead>
          <tr>
            <th>Checkpoint</th>
            <th>Step</th>
            <th>Size</th>
            <th>Files</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    </section>
  `;
}

function configSection(config: RunConfig | null): Html {
  if (config === null) {
    return html`
      <section id="config">
        <h2>Configuration</h2>
        <p class="empty">No <code>config.yaml</code>.</p>
      </section>
    `;
  }
  return html`<section id="config"><h2>Configuration</h2>
${config.error === null ? "" : html`<p class="error">${config.error}</p>`}
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
}

/** The run page: summary, live charts (filled by `run.js`), evals, checkpoints, config. */
export function runPage(data: RunPageData): Html {
  const { summary } = data;
  const body = html`
    <h1>${summary.name}</h1>
    ${summary.error === null ? "" : html`<p class="error">${summary.error}</p>`}
    <dl class="summary">
      <div>
        <dt>Recipe</dt>
        <dd>${summary.recipe ?? "—"}</dd>
      </div>
      <div>
        <dt>Status</dt>
        <dd id="run-status">${statusBadge(summary.status)}</dd>
      </div>
      <div>
        <dt>Steps</dt>
        <dd id="run-steps">${stepsText(summary)}</dd>
      </div>
      <div>
        <dt>Started</dt>
        <dd>${formatTime(summary.started_at)}</dd>
      </div>
      <div>
        <dt>Updated</dt>
        <dd id="run-updated">${formatTime(summary.updated_at)}</dd>
      </div>
      <div>
        <dt>Best</dt>
        <dd id="run-best">${bestText(summary.best)}</dd>
      </div>
    </dl>
    <section id="metrics">
      <h2>Metrics <span id="live" class="live" data-state="connecting">connecting…</span></h2>
      <p id="pending" class="muted" hidden></p>
      <div id="charts" class="charts" data-records="0"></div>
      <p id="no-metrics" class="empty">No metrics yet.</p>
      <div id="malformed-section" hidden>
        <h3>Malformed lines in <code>metrics.jsonl</code></h3>
        <ul id="malformed" class="errors"></ul>
      </div>
    </section>
    ${evalSection(summary.name, data.evaluations, data.evalErrors)}
    ${checkpointSection(data.checkpoints)}
    ${configSection(data.config)}
  `;
  return layout(summary.name, body, {
    scripts: ["/static/run.js"],
    data: { run: summary.name },
  });
}

/** The compare page: pick runs and a metric; `compare.js` draws them on one chart. */
export function comparePage(runs: RunSummary[], selected: string[], metric: string): Html {
  const openable = runs.filter((run) =>
    run.valid_name && run.error !== "points outside the runs directory"
  );
  const boxes = openable.map((run) =>
    html`
      <label
        class="pick"><input type="checkbox" name="runs" value="${run
          .name}"${selected.includes(run.name)
          ? html`
            checked
          `
          : ""}> ${run.name} <span class="muted">${run.recipe ?? ""}</span></label>
    `
  );
  const body = html`
    <h1>Compare runs</h1>
    <form id="compare-form" method="get" action="/compare">
      <fieldset><legend>Runs</legend>${openable.length === 0
        ? html`<p class="empty">No runs.</p>`
        : boxes}</fieldset>
      <label>Metric <select id="metric" name="metric">${metric === ""
        ? ""
        : html`<option value="${metric}" selected>${metric}</option>`}</select></label>
      <noscript><button type="submit">Show</button></noscript>
    </form>
    <p id="compare-status" class="muted"></p>
    <div id="charts" class="charts"></div>
  `;
  return layout("Compare", body, {
    scripts: ["/static/compare.js"],
    data: { metric },
  });
}

/** A small error page (status shown by the caller). */
export function errorPage(status: number, message: string): Html {
  return layout(
    `Error ${status}`,
    html`
      <h1>Error ${status}</h1>
      <p class="error">${message}</p>
      <p><a href="/">Back to the runs</a></p>
    `,
  );
}
