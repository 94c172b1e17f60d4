import assert from "node:assert/strict";
import {
  chartGroup,
  formatNumber,
  logTicks,
  makeScale,
  niceTicks,
  pathData,
} from "./static/chart.js";

Deno.test("niceTicks: 1-2-5 steps that frame the data", () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(10, 120, 6), [0, 20, 40, 60, 80, 100, 120]);
  assert.deepEqual(niceTicks(0.1, 0.9, 4), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  // Float noise is rounded away (0.1 * 3 is 0.30000000000000004).
  assert.deepEqual(niceTicks(0.1, 0.5, 4), [0.1, 0.2, 0.3, 0.4, 0.5]);
  assert.deepEqual(niceTicks(-3, 7, 5), [-4, -2, 0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(1.234, 1.236, 4), [1.234, 1.2345, 1.235, 1.2355, 1.236]);
  // A flat series still gets an axis around its value.
  assert.deepEqual(niceTicks(5, 5, 4), [4.5, 5, 5.5]);
  assert.deepEqual(niceTicks(0, 0, 4), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(NaN, 1), []);
});

Deno.test("niceTicks: every range is covered by evenly spaced ticks", () => {
  for (
    const [min, max] of [[0.013, 0.92], [3, 4e6], [-5e-5, 2e-4], [1e-4, 1e-4 * 1.001], [17, 4242]]
  ) {
    const ticks = niceTicks(min!, max!, 5);
    assert.ok(ticks[0]! <= min! && ticks[ticks.length - 1]! >= max!, `${min}..${max}: ${ticks}`);
    assert.ok(ticks.length >= 3 && ticks.length <= 12, `${min}..${max}: ${ticks.length} ticks`);
    const step = ticks[1]! - ticks[0]!;
    const mantissa = step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
    assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6), `step ${step}`);
    for (let i = 1; i < ticks.length; i++) {
      assert.ok(Math.abs(ticks[i]! - ticks[i - 1]! - step) < step * 1e-6);
    }
  }
});

Deno.test("logTicks: 1-2-5 within two decades, powers of ten beyond", () => {
  assert.deepEqual(logTicks(1.2, 2.5), [1, 2, 5]);
  assert.deepEqual(logTicks(0.3, 3), [0.2, 0.5, 1, 2, 5]);
  assert.deepEqual(logTicks(0.002, 40), [0.001, 0.01, 0.1, 1, 10, 100]);
  assert.deepEqual(logTicks(1e-5, 1e-4), [1e-5, 2e-5, 5e-5, 1e-4]);
  assert.deepEqual(logTicks(0, 1), []);
});

Deno.test("formatNumber: short labels", () => {
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(2.31), "2.31");
  assert.equal(formatNumber(1 / 3), "0.3333");
  assert.equal(formatNumber(5400), "5400");
  assert.equal(formatNumber(123456), "1.23e5");
  assert.equal(formatNumber(1e-4), "1e-4");
  assert.equal(formatNumber(2.5e-5), "2.5e-5");
  assert.equal(formatNumber(-0.125), "-0.125");
  assert.equal(formatNumber(Infinity), "Infinity");
});

Deno.test("chartGroup puts metrics on the right chart", () => {
  assert.equal(chartGroup("train/loss"), "loss");
  assert.equal(chartGroup("train/aux_loss"), "loss");
  assert.equal(chartGroup("train/learning_rate"), "lr");
  assert.equal(chartGroup("train/lr"), "lr");
  assert.equal(chartGroup("tokens_per_s"), "throughput");
  assert.equal(chartGroup("eval/ndcg@10"), "eval");
  assert.equal(chartGroup("eval/loss"), "eval");
  // one unit per chart: epoch, grad norm and bytes each get their own axis
  assert.equal(chartGroup("epoch"), "epoch");
  assert.equal(chartGroup("train/grad_norm"), "grad_norm");
  assert.equal(chartGroup("gpu_memory_bytes"), "memory");
  assert.equal(chartGroup("train/aux_accuracy"), "other");
});

Deno.test("makeScale and pathData map data to pixels", () => {
  const x = makeScale(0, 100, 50, 650, false);
  assert.equal(x(0), 50);
  assert.equal(x(50), 350);
  assert.equal(x(100), 650);
  const y = makeScale(0.01, 10, 200, 0, true);
  assert.equal(y(0.01), 200);
  assert.ok(Math.abs(y(0.1) - 200 * 2 / 3) < 1e-9);
  assert.ok(Math.abs(y(10)) < 1e-9);
  assert.equal(pathData([[1, 2], [3.25, 4.75], [5, 6]]), "M1.0 2.0L3.3 4.8L5.0 6.0");
  assert.equal(pathData([]), "");
});
