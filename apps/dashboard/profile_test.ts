import assert from "node:assert/strict";
import { join } from "node:path";
import { createApp } from "./app.ts";
import { MAX_BARS, profileBars } from "./profile.ts";
import { makeRunsDir, runJson, trainLine } from "./test_fixtures.ts";

const PROFILE = {
  step: 2,
  time: "2026-12-04T10:00:00.000Z",
  totalMs: 10,
  dispatches: 7,
  timedDispatches: 7,
  rows: [
    { op: "rms_norm", ms: 2, share: 0.2, dispatches: 3, kernels: ["rms_norm"] },
    { op: "linear.backward", ms: 6, share: 0.6, dispatches: 2, kernels: ["matmul"] },
    { op: "<b>adamw</b>", ms: 2, share: 0.2, dispatches: 2, kernels: ["adamw"] },
  ],
};

Deno.test("run page: profile.json drawn as bars, longest first, widths by time, escaped", async () => {
  const runs = await makeRunsDir([
    { name: "profiled", runJson: runJson("profiled"), metrics: trainLine(1) },
    { name: "plain", runJson: runJson("plain"), metrics: trainLine(1) },
    { name: "bad", runJson: runJson("bad"), metrics: trainLine(1) },
  ]);
  try {
    await Deno.writeTextFile(join(runs, "profiled", "profile.json"), JSON.stringify(PROFILE));
    await Deno.writeTextFile(join(runs, "bad", "profile.json"), JSON.stringify({ step: 1 }));
    const app = createApp(runs);
    const page = await (await app.request("/runs/profiled")).text();
    assert.match(page, /<section id="profile"><h2>GPU time per op/);
    assert.match(page, /step 2, 7 dispatches, 10\.00 ms/);
    const bars = [...page.matchAll(/data-op="([^"]*)" data-ms="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(bars, ["linear.backward", "rms_norm", "&lt;b&gt;adamw&lt;/b&gt;"]);
    const widths = [...page.matchAll(/<rect [^>]*width="([\d.]+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(widths, [420, 140, 140]);
    assert.match(page, /6\.000 ms · 60\.0% · 2×/);
    assert.ok(!page.includes("<b>adamw"), "op names are escaped");
    const plain = await (await app.request("/runs/plain")).text();
    assert.ok(!plain.includes(`id="profile"`), "no profile, no section");
    const bad = await (await app.request("/runs/bad")).text();
    assert.match(bad, /bad\/profile\.json: field &quot;totalMs&quot; is not a number/);
  } finally {
    await Deno.remove(runs, { recursive: true });
  }
});

Deno.test("profileBars folds the ops past the limit into one bar", () => {
  const rows = Array.from({ length: MAX_BARS + 5 }, (_, i) => ({
    op: `op${i}`,
    ms: 100 - i,
    share: 0.01,
    dispatches: 1,
  }));
  const bars = profileBars(rows);
  assert.equal(bars.length, MAX_BARS);
  const last = bars[MAX_BARS - 1]!;
  assert.equal(last.op, "6 other ops");
  assert.equal(last.dispatches, 6);
  assert.equal(last.ms, rows.slice(MAX_BARS - 1).reduce((s, r) => s + r.ms, 0));
});
