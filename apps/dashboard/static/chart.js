// Small SVG line charts for the dashboard: axes with ticks, several series,
// a legend and an optional log scale. No dependencies, no external assets.
// The pure helpers (ticks, formatting, paths, grouping) are exported so the
// Deno tests can check them; `LineChart` needs a DOM.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Series colours (colour-blind friendly, Okabe–Ito plus extras). */
export const PALETTE = [
  "#0072b2",
  "#d55e00",
  "#009e73",
  "#cc79a7",
  "#e69f00",
  "#56b4e9",
  "#7f3c8d",
  "#3b3b3b",
  "#a6761d",
  "#1b9e77",
];

/**
 * "Nice" tick values covering [min, max]: about `count` ticks spaced by
 * 1, 2 or 5 times a power of ten.
 * @param {number} min
 * @param {number} max
 * @param {number} [count]
 * @returns {number[]}
 */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceTicks(min - pad, max + pad, count);
  }
  if (min > max) [min, max] = [max, min];
  const rough = (max - min) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  // The tolerance keeps float noise (0.0020000000000000018 / 4) from skipping a step size.
  const fraction = rough / power - 1e-9;
  const step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  const first = Math.floor(min / step + 1e-9) * step;
  const last = Math.ceil(max / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) {
    ticks.push(roundTo(first + i * step, step));
  }
  return ticks;
}

/**
 * Tick values for a log axis over [min, max] (both > 0): powers of ten,
 * or 1-2-5 steps when the range spans less than two decades.
 * @param {number} min
 * @param {number} max
 * @returns {number[]}
 */
export function logTicks(min, max) {
  if (!(min > 0) || !(max > 0)) return [];
  if (min > max) [min, max] = [max, min];
  const low = Math.floor(Math.log10(min) + 1e-9);
  const high = Math.ceil(Math.log10(max) - 1e-9);
  const multipliers = high - low <= 2 ? [1, 2, 5] : [1];
  const candidates = [];
  for (let e = low; e <= Math.max(high, low + 1); e++) {
    for (const m of multipliers) candidates.push(roundTo(m * Math.pow(10, e), Math.pow(10, e)));
  }
  // From the largest candidate <= min to the smallest >= max, so ticks frame the data.
  let first = 0;
  while (first + 1 < candidates.length && candidates[first + 1] <= min * (1 + 1e-9)) first++;
  let last = candidates.length - 1;
  while (last - 1 >= 0 && candidates[last - 1] >= max * (1 - 1e-9)) last--;
  return candidates.slice(first, last + 1);
}

/** Rounds `value` to the precision of `step` (removes float noise like 0.30000000000000004). */
function roundTo(value, step) {
  const digits = Math.max(0, -Math.floor(Math.log10(Math.abs(step))) + 2);
  return Number(value.toFixed(Math.min(20, digits)));
}

/**
 * Short label for a number: up to 4 significant digits, exponent form for
 * very large or very small magnitudes.
 * @param {number} value
 * @returns {string}
 */
export function formatNumber(value) {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) {
    return value.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  return String(Number(value.toPrecision(4)));
}

/**
 * Which chart a metric belongs on.
 * @param {string} name metric key from metrics.jsonl
 * One chart per unit: epochs, gradient norms and bytes never share an axis.
 * @returns {"loss" | "lr" | "throughput" | "eval" | "grad_norm" | "memory" | "epoch" | "other"}
 */
export function chartGroup(name) {
  if (name.startsWith("eval/")) return "eval";
  if (/(^|\/)(learning_rate|lr)$/.test(name)) return "lr";
  if (/per_s(ec(ond)?)?$/.test(name)) return "throughput";
  if (/loss/.test(name)) return "loss";
  if (/(^|\/)grad_norm$/.test(name)) return "grad_norm";
  if (/_bytes$/.test(name)) return "memory";
  if (name === "epoch") return "epoch";
  return "other";
}

/** Chart titles and order on the run page. */
export const CHART_GROUPS = [
  { id: "loss", title: "Loss", log: true },
  { id: "lr", title: "Learning rate", log: false },
  { id: "throughput", title: "Throughput", log: false },
  { id: "eval", title: "Eval metrics", log: false },
  { id: "grad_norm", title: "Gradient norm", log: true },
  { id: "memory", title: "GPU memory (bytes)", log: false },
  { id: "epoch", title: "Epoch", log: false },
  { id: "other", title: "Other", log: false },
];

/**
 * The SVG path `d` for points already in pixel space.
 * @param {Array<[number, number]>} pixels
 * @returns {string}
 */
export function pathData(pixels) {
  return pixels.map(([x, y], i) => `${i === 0 ? "M" : "L"}${x.toFixed(1)} ${y.toFixed(1)}`).join(
    "",
  );
}

/**
 * A linear or log scale from a data domain to a pixel range.
 * @param {number} d0
 * @param {number} d1
 * @param {number} r0
 * @param {number} r1
 * @param {boolean} log
 * @returns {(v: number) => number}
 */
export function makeScale(d0, d1, r0, r1, log) {
  const f = log ? Math.log10 : (v) => v;
  const a = f(d0);
  const b = f(d1);
  const span = b - a || 1;
  return (v) => r0 + ((f(v) - a) / span) * (r1 - r0);
}

function svg(tag, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** An SVG line chart of several series of [x, y] points, inside `container`. */
export class LineChart {
  /**
   * @param {HTMLElement} container element to draw into (emptied)
   * @param {{title: string, xLabel?: string, logToggle?: boolean, log?: boolean, id?: string}} options
   */
  constructor(container, options) {
    this.options = options;
    this.log = Boolean(options.log && options.logToggle);
    /** @type {Map<string, Array<[number, number]>>} */
    this.series = new Map();
    this.colors = new Map();
    this.width = 640;
    this.height = 260;
    this.margin = { left: 58, right: 14, top: 10, bottom: 34 };

    container.textContent = "";
    this.root = document.createElement("figure");
    this.root.className = "chart";
    if (options.id) this.root.dataset.chart = options.id;
    const header = document.createElement("figcaption");
    const title = document.createElement("span");
    title.className = "chart-title";
    title.textContent = options.title;
    header.appendChild(title);
    if (options.logToggle) {
      const label = document.createElement("label");
      label.className = "log-toggle";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = this.log;
      box.addEventListener("change", () => {
        this.log = box.checked;
        this.render();
      });
      label.append(box, " log scale");
      header.appendChild(label);
    }
    this.root.appendChild(header);
    this.svg = svg("svg", {
      viewBox: `0 0 ${this.width} ${this.height}`,
      role: "img",
      "aria-label": options.title,
    });
    this.root.appendChild(this.svg);
    // One viewBox unit per CSS pixel, so text keeps its size at any chart width.
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => {
        if (Math.round(this.svg.getBoundingClientRect().width) !== this.width) {
          this.scheduleRender();
        }
      }).observe(this.svg);
    }
    this.legend = document.createElement("ul");
    this.legend.className = "legend";
    this.root.appendChild(this.legend);
    container.appendChild(this.root);
  }

  /**
   * Appends points to a series (created on first use), then redraws.
   * @param {string} name
   * @param {Array<[number, number]>} points
   */
  addPoints(name, points) {
    let list = this.series.get(name);
    if (!list) {
      list = [];
      this.series.set(name, list);
      this.colors.set(name, PALETTE[(this.series.size - 1) % PALETTE.length]);
    }
    for (const point of points) list.push(point);
    this.scheduleRender();
  }

  /** Removes every series. */
  clear() {
    this.series.clear();
    this.colors.clear();
    this.scheduleRender();
  }

  /** Coalesces redraws: many batches in one frame draw once. */
  scheduleRender() {
    if (this.pending) return;
    this.pending = true;
    const run = () => {
      this.pending = false;
      this.render();
    };
    if (typeof requestAnimationFrame === "function" && !document.hidden) {
      requestAnimationFrame(run);
    } else setTimeout(run, 0);
  }

  /** Redraws axes, ticks, series and legend from the current data. */
  render() {
    const measured = Math.round(this.svg.getBoundingClientRect().width);
    if (measured > 0) this.width = Math.max(240, measured);
    this.svg.setAttribute("viewBox", `0 0 ${this.width} ${this.height}`);
    const { width, height, margin } = this;
    const plotLeft = margin.left;
    const plotRight = width - margin.right;
    const plotTop = margin.top;
    const plotBottom = height - margin.bottom;
    this.svg.textContent = "";

    const usable = (y) => Number.isFinite(y) && (!this.log || y > 0);
    let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
    for (const points of this.series.values()) {
      for (const [x, y] of points) {
        if (!usable(y) || !Number.isFinite(x)) continue;
        xMin = Math.min(xMin, x);
        xMax = Math.max(xMax, x);
        yMin = Math.min(yMin, y);
        yMax = Math.max(yMax, y);
      }
    }
    const empty = xMin === Infinity;
    if (empty) {
      xMin = 0;
      xMax = 1;
      yMin = 0;
      yMax = 1;
    }
    const xTicks = niceTicks(xMin, xMax, Math.max(3, Math.round((width - 80) / 90)));
    let yTicks = this.log ? logTicks(yMin, yMax) : niceTicks(yMin, yMax, 5);
    if (yTicks.length < 2) yTicks = niceTicks(yMin, yMax, 5);
    const x0 = Math.min(xMin, xTicks[0] ?? xMin);
    const x1 = Math.max(xMax, xTicks[xTicks.length - 1] ?? xMax);
    const y0 = Math.min(yMin, yTicks[0] ?? yMin);
    const y1 = Math.max(yMax, yTicks[yTicks.length - 1] ?? yMax);
    const sx = makeScale(x0, x1 === x0 ? x0 + 1 : x1, plotLeft, plotRight, false);
    const sy = makeScale(y0, y1 === y0 ? y0 + 1 : y1, plotBottom, plotTop, this.log);

    const grid = svg("g", { class: "grid" }, this.svg);
    const axes = svg("g", { class: "axes" }, this.svg);
    for (const t of yTicks) {
      const y = sy(t);
      svg("line", { x1: plotLeft, x2: plotRight, y1: y, y2: y }, grid);
      const label = svg("text", { x: plotLeft - 6, y: y + 4, "text-anchor": "end" }, axes);
      label.textContent = formatNumber(t);
    }
    for (const t of xTicks) {
      const x = sx(t);
      svg("line", { x1: x, x2: x, y1: plotBottom, y2: plotBottom + 5 }, axes);
      const label = svg("text", { x, y: plotBottom + 18, "text-anchor": "middle" }, axes);
      label.textContent = formatNumber(t);
    }
    svg("line", { x1: plotLeft, x2: plotRight, y1: plotBottom, y2: plotBottom }, axes);
    svg("line", { x1: plotLeft, x2: plotLeft, y1: plotTop, y2: plotBottom }, axes);
    const xLabel = svg("text", {
      x: (plotLeft + plotRight) / 2,
      y: height - 3,
      "text-anchor": "middle",
      class: "axis-label",
    }, axes);
    xLabel.textContent = this.options.xLabel ?? "step";
    if (empty) {
      const note = svg("text", {
        x: (plotLeft + plotRight) / 2,
        y: (plotTop + plotBottom) / 2,
        "text-anchor": "middle",
        class: "no-data",
      }, this.svg);
      note.textContent = "no data yet";
    }

    const lines = svg("g", { class: "series" }, this.svg);
    this.legend.textContent = "";
    for (const [name, points] of this.series) {
      const color = this.colors.get(name);
      const kept = points.filter(([x, y]) => Number.isFinite(x) && usable(y));
      kept.sort((a, b) => a[0] - b[0]);
      const pixels = kept.map(([x, y]) => [sx(x), sy(y)]);
      const path = svg("path", {
        d: pathData(pixels),
        fill: "none",
        stroke: color,
        "stroke-width": 1.8,
        "data-series": name,
        "data-points": kept.length,
      }, lines);
      path.setAttribute("stroke-linejoin", "round");
      // Dots when points are few (eval metrics) so single points show.
      if (kept.length <= 60) {
        kept.forEach(([x, y], i) => {
          const dot = svg("circle", {
            cx: pixels[i][0],
            cy: pixels[i][1],
            r: 2.6,
            fill: color,
          }, lines);
          const tip = svg("title", {}, dot);
          tip.textContent = `${name} @ ${x}: ${formatNumber(y)}`;
        });
      }
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = color;
      const label = document.createElement("span");
      const last = kept[kept.length - 1];
      label.textContent = last ? `${name} (${formatNumber(last[1])} @ ${last[0]})` : name;
      item.append(swatch, label);
      this.legend.appendChild(item);
    }
  }
}
