// The run page: live charts fed by server-sent events from
// /api/runs/<name>/events, malformed-line reporting, and per-query eval
// tables loaded on demand. All text goes in with textContent, never HTML.

import { CHART_GROUPS, chartGroup, formatNumber, LineChart } from "./chart.js";

const runName = document.body.dataset.run ?? "";
// A nested run's id keeps its "/" (`distill-x/phase1`); each part is encoded.
const api = `/api/runs/${runName.split("/").map(encodeURIComponent).join("/")}`;
const chartsBox = document.getElementById("charts");
const live = document.getElementById("live");
const pending = document.getElementById("pending");
const noMetrics = document.getElementById("no-metrics");
const malformedSection = document.getElementById("malformed-section");
const malformedList = document.getElementById("malformed");

/** @type {Map<string, LineChart>} */
const charts = new Map();
let records = 0;

function chartFor(group) {
  let chart = charts.get(group);
  if (chart) return chart;
  const spec = CHART_GROUPS.find((g) => g.id === group) ?? CHART_GROUPS[CHART_GROUPS.length - 1];
  // Keep charts in CHART_GROUPS order whatever order metrics arrive in.
  const slot = document.createElement("div");
  slot.className = "chart-slot";
  slot.dataset.group = group;
  const order = CHART_GROUPS.map((g) => g.id);
  const after = [...chartsBox.children].find((el) =>
    order.indexOf(el.dataset.group) > order.indexOf(group)
  );
  chartsBox.insertBefore(slot, after ?? null);
  chart = new LineChart(slot, { title: spec.title, logToggle: spec.log, id: group });
  charts.set(group, chart);
  return chart;
}

function addRecords(metrics) {
  /** @type {Map<string, Array<[number, number]>>} */
  const batches = new Map();
  for (const record of metrics) {
    for (const [key, value] of Object.entries(record)) {
      if (key === "step" || key === "time" || typeof value !== "number") continue;
      let list = batches.get(key);
      if (!list) batches.set(key, list = []);
      list.push([record.step, value]);
    }
  }
  for (const [key, points] of batches) chartFor(chartGroup(key)).addPoints(key, points);
  records += metrics.length;
  chartsBox.dataset.records = String(records);
  noMetrics.hidden = records > 0;
}

function addMalformed(malformed) {
  for (const bad of malformed) {
    const item = document.createElement("li");
    const where = document.createElement("strong");
    where.textContent = `line ${bad.line}: `;
    const why = document.createElement("span");
    why.textContent = bad.error;
    const text = document.createElement("code");
    text.textContent = bad.text;
    item.append(where, why, document.createElement("br"), text);
    malformedList.appendChild(item);
  }
  malformedSection.hidden = malformedList.children.length === 0;
  malformedList.dataset.count = String(malformedList.children.length);
}

function showPending(info) {
  if (info) {
    pending.hidden = false;
    pending.textContent = `line ${info.line} is being written (${info.bytes} bytes so far)`;
  } else {
    pending.hidden = true;
    pending.textContent = "";
  }
}

function reset() {
  for (const chart of charts.values()) chart.clear();
  records = 0;
  chartsBox.dataset.records = "0";
  malformedList.textContent = "";
  addMalformed([]);
}

function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

function updateSummary(summary) {
  const status = document.querySelector("#run-status .status");
  if (status && summary.status) {
    status.textContent = summary.status;
    status.className = `status status-${summary.status}`;
  }
  const steps = document.getElementById("run-steps");
  if (steps && summary.step !== null) {
    steps.textContent = summary.total_steps === null
      ? String(summary.step)
      : `${summary.step} / ${summary.total_steps}`;
  }
  const best = document.getElementById("run-best");
  if (best && summary.best) {
    best.textContent = `${summary.best.metric} = ${
      formatNumber(summary.best.value)
    } @ ${summary.best.step}`;
  }
  const updated = document.getElementById("run-updated");
  if (updated && summary.updated_at) {
    updated.textContent = summary.updated_at.replace("T", " ").replace(/\.\d+Z?$|Z$/, "");
  }
}

function connect() {
  const events = new EventSource(`${api}/events`);
  events.addEventListener("open", () => setLive("live", "live"));
  events.addEventListener("metrics", (event) => {
    const chunk = JSON.parse(event.data);
    if (chunk.reset) reset();
    addRecords(chunk.metrics);
    addMalformed(chunk.malformed);
    showPending(chunk.pending);
  });
  events.addEventListener("run", (event) => updateSummary(JSON.parse(event.data)));
  events.addEventListener("problem", (event) => setLive("error", `error: ${event.data}`));
  events.addEventListener("error", () => {
    // EventSource reconnects by itself, resuming from the last event id.
    setLive("reconnecting", "reconnecting…");
  });
}

async function showPerQuery(step, button) {
  const box = document.getElementById("per-query");
  box.textContent = "loading…";
  try {
    const response = await fetch(`${api}/eval/${encodeURIComponent(step)}`);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ?? response.statusText);
    const perQuery = body.per_query ?? {};
    const columns = [...new Set(Object.values(perQuery).flatMap((row) => Object.keys(row)))]
      .sort();
    box.textContent = "";
    const heading = document.createElement("h3");
    heading.textContent = `Per-query metrics at step ${step} (${
      Object.keys(perQuery).length
    } queries)`;
    const table = document.createElement("table");
    table.className = "per-query-table";
    table.dataset.step = String(step);
    const head = table.createTHead().insertRow();
    for (const title of ["Query", ...columns]) {
      const th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    }
    const rows = table.createTBody();
    for (const [qid, row] of Object.entries(perQuery)) {
      const tr = rows.insertRow();
      tr.insertCell().textContent = qid;
      for (const column of columns) {
        const cell = tr.insertCell();
        cell.className = "num";
        cell.textContent = column in row ? formatNumber(row[column]) : "—";
      }
    }
    box.append(heading, table);
    box.scrollIntoView({ block: "nearest" });
  } catch (error) {
    box.textContent = `could not load per-query metrics: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

for (const button of document.querySelectorAll("button.per-query")) {
  button.addEventListener("click", () => {
    button.disabled = true;
    showPerQuery(button.dataset.step, button);
  });
}

connect();
