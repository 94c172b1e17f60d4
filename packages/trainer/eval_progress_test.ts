import assert from "node:assert/strict";
import { EvalProgress, evalProgress, formatRate, phasedEvalProgress } from "./eval_progress.ts";

Deno.test("formatRate", () => {
  assert.equal(formatRate(0), "0/s");
  assert.equal(formatRate(0.41234), "0.412/s");
  assert.equal(formatRate(53.44), "53.4/s");
  assert.equal(formatRate(640), "640/s");
  assert.equal(formatRate(1234), "1.23k/s");
  assert.equal(formatRate(Infinity), "?/s");
});

Deno.test("EvalProgress: first item, then one line per interval, then a final line", () => {
  const lines: string[] = [];
  let clock = 1000;
  const progress = new EvalProgress({
    what: "documents",
    total: 1000,
    log: (line) => lines.push(line),
    intervalMs: 5000,
    now: () => clock,
  });
  // 100 documents per 2 s batch: 50/s, 20 s in all.
  for (let done = 100; done <= 1000; done += 100) {
    clock += 2000;
    progress.update(done);
  }
  progress.update(1000); // a repeated final count prints nothing more
  assert.deepEqual(lines, [
    "eval: documents 100/1000 (10%) 50/s ETA 18s",
    "eval: documents 400/1000 (40%) 50/s ETA 12s",
    "eval: documents 700/1000 (70%) 50/s ETA 6s",
    "eval: documents 1000/1000 in 20s (50/s)",
  ]);
});

Deno.test("EvalProgress: a slow evaluation shows fractional rates and minutes left", () => {
  const lines: string[] = [];
  let clock = 0;
  const update = evalProgress("queries", 200, (line) => lines.push(line), {
    now: () => clock,
  });
  clock = 2500; // 2.5 s for the first query
  update(1);
  clock = 4000; // inside the interval: no line
  update(2);
  assert.deepEqual(lines, ["eval: queries 1/200 (0%) 0.4/s ETA 8m18s"]);
});

Deno.test("phasedEvalProgress: one reporter per phase", () => {
  const lines: string[] = [];
  let clock = 0;
  const report = phasedEvalProgress((line) => lines.push(line), { now: () => clock });
  clock = 1000;
  report("documents", 64, 128);
  clock = 2000;
  report("documents", 128, 128);
  clock = 2500;
  report("queries", 10, 10);
  assert.deepEqual(lines, [
    "eval: documents 64/128 (50%) 64/s ETA 1s",
    "eval: documents 128/128 in 2s (64/s)",
    "eval: queries 10/10 in 1s (20/s)",
  ]);
});
