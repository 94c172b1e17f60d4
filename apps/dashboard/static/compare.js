// The compare page: several runs' values of one metric on one chart. Each
// selected run's metrics are fetched through /api/runs/<name>/metrics and
// then polled with the returned cursor, so running runs keep updating.

import { LineChart } from "./chart.js";

const form = document.getElementById("compare-form");
const metricSelect = document.getElementById("metric");
const status = document.getElementById("compare-status");
const chartsBox = document.getElementById("charts");
const POLL_MS = 3000;

/** Per run: cursor and all records so far. @type {Map<string, {next: string, records: object[]}>} */
const loaded = new Map();
let chart = null;
let chosenMetric = document.body.dataset.metric ?? "";

function selectedRuns() {
  return [...form.querySelectorAll('input[name="runs"]:checked')].map((box) => box.value);
}

async function fetchMore(name) {
  const state = loaded.get(name) ?? { next: "", records: [] };
  loaded.set(name, state);
  for (;;) {
    const url = `/api/runs/${name.split("/").map(encodeURIComponent).join("/")}/metrics?since=${
      encodeURIComponent(state.next)
    }`;
    const response = await fetch(url);
    const body = await response.json();
    if (!response.ok) throw new Error(`${name}: ${body.error ?? response.statusText}`);
    if (body.reset) state.records = [];
    state.records.push(...body.metrics);
    state.next = body.next;
    if (!body.more) return;
  }
}

function metricNames(runs) {
  const names = new Set();
  for (const name of runs) {
    for (const record of loaded.get(name)?.records ?? []) {
      for (const [key, value] of Object.entries(record)) {
        if (key !== "step" && key !== "time" && typeof value === "number") names.add(key);
      }
    }
  }
  return [...names].sort();
}

function fillMetricOptions(names) {
  if (!chosenMetric || !names.includes(chosenMetric)) {
    chosenMetric = names.find((n) => n === "train/loss") ?? names[0] ?? "";
  }
  metricSelect.textContent = "";
  for (const name of names) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    option.selected = name === chosenMetric;
    metricSelect.appendChild(option);
  }
}

function draw(runs) {
  if (!chart) chart = new LineChart(chartsBox, { title: "", logToggle: true, id: "compare" });
  chart.options.title = chosenMetric;
  chart.root.querySelector(".chart-title").textContent = chosenMetric || "choose runs";
  chart.clear();
  for (const name of runs) {
    const points = (loaded.get(name)?.records ?? [])
      .filter((record) => typeof record[chosenMetric] === "number")
      .map((record) => [record.step, record[chosenMetric]]);
    chart.addPoints(name, points);
  }
  const params = new URLSearchParams();
  for (const name of runs) params.append("runs", name);
  if (chosenMetric) params.set("metric", chosenMetric);
  history.replaceState(null, "", `/compare?${params}`);
}

async function refresh() {
  const runs = selectedRuns();
  try {
    await Promise.all(runs.map(fetchMore));
    fillMetricOptions(metricNames(runs));
    draw(runs);
    status.textContent = runs.length === 0 ? "Choose one or more runs." : "";
  } catch (error) {
    status.textContent = `error: ${error.message}`;
  }
}

form.addEventListener("change", (event) => {
  if (event.target === metricSelect) chosenMetric = metricSelect.value;
  refresh();
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  refresh();
});
refresh();
setInterval(() => {
  if (!document.hidden && selectedRuns().length > 0) refresh();
}, POLL_MS);
