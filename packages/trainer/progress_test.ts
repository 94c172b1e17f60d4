import assert from "node:assert/strict";
import {
  formatCount,
  formatDuration,
  formatLearningRate,
  formatLoss,
  formatProgressLine,
  Progress,
  progressBar,
} from "./progress.ts";

Deno.test("formatDuration", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(44.6), "45s");
  assert.equal(formatDuration(59.4), "59s");
  assert.equal(formatDuration(60), "1m00s");
  assert.equal(formatDuration(192), "3m12s");
  assert.equal(formatDuration(3599), "59m59s");
  assert.equal(formatDuration(3600 + 2 * 60 + 59), "1h02m");
  assert.equal(formatDuration(2 * 86400 + 3 * 3600 + 1), "2d03h");
  assert.equal(formatDuration(Infinity), "?");
  assert.equal(formatDuration(NaN), "?");
  assert.equal(formatDuration(-1), "?");
});

Deno.test("formatCount, formatLearningRate, formatLoss", () => {
  assert.equal(formatCount(0), "0");
  assert.equal(formatCount(950.4), "950");
  assert.equal(formatCount(5400), "5.40k");
  assert.equal(formatCount(12_345), "12.3k");
  assert.equal(formatCount(999_950), "1.00M");
  assert.equal(formatCount(1_234_567), "1.23M");
  assert.equal(formatCount(7.5e9), "7.50G");
  assert.equal(formatLearningRate(1e-4), "1.00e-4");
  assert.equal(formatLearningRate(2.5e-5), "2.50e-5");
  assert.equal(formatLearningRate(0), "0");
  assert.equal(formatLearningRate(3), "3.00e0");
  assert.equal(formatLoss(2.31), "2.310");
  assert.equal(formatLoss(0.0123456), "0.01235");
  assert.equal(formatLoss(NaN), "nan");
  assert.equal(formatLoss(Infinity), "inf");
});

Deno.test("progressBar and formatProgressLine", () => {
  assert.equal(progressBar(0, 4), "[....]");
  assert.equal(progressBar(0.5, 4), "[##..]");
  assert.equal(progressBar(0.99, 4), "[###.]");
  assert.equal(progressBar(1.5, 4), "[####]");
  assert.equal(progressBar(NaN, 2), "[..]");
  assert.equal(
    formatProgressLine({
      step: 120,
      total: 500,
      loss: 2.31,
      lr: 1e-4,
      tokensPerSecond: 5400,
      etaSeconds: 192,
    }),
    "step 120/500 loss 2.310 lr 1.00e-4 5.40k tok/s ETA 3m12s",
  );
  assert.equal(formatProgressLine({ step: 5, total: 500 }, 10), "[..........] step   5/500");
});

Deno.test("Progress: plain lines every logging_steps without a TTY", () => {
  let out = "";
  let clock = 0;
  const progress = new Progress({
    total: 25,
    loggingSteps: 10,
    tty: false,
    write: (text) => (out += text),
    now: () => clock,
  });
  for (let step = 1; step <= 25; step++) {
    clock += 500; // 0.5 s per step, 1000 tokens per step
    progress.update(step, { loss: 1 / step, lr: 1e-4, tokens: 1000 });
  }
  progress.finish();
  assert.deepEqual(out.trimEnd().split("\n"), [
    "step 10/25 loss 0.1000 lr 1.00e-4 2.00k tok/s ETA 8s",
    "step 20/25 loss 0.05000 lr 1.00e-4 2.00k tok/s ETA 3s",
    "step 25/25 loss 0.04000 lr 1.00e-4 2.00k tok/s ETA 0s",
  ]);
});

Deno.test("Progress: one updating line on a TTY, resumed runs time from their start", () => {
  let out = "";
  let clock = 1000;
  const progress = new Progress({
    total: 100,
    loggingSteps: 10,
    startStep: 50,
    tty: true,
    write: (text) => (out += text),
    now: () => clock,
  });
  clock += 10_000;
  progress.update(60, { loss: 2 });
  progress.update(61, { loss: 1.5 });
  progress.finish();
  const frames = out.split("\r").filter((f) => f !== "");
  assert.equal(frames.length, 2);
  assert.equal(frames[0], "[##############..........] step  60/100 loss 2.000 ETA 40s\x1b[K");
  assert.ok(frames[1]!.endsWith("\x1b[K\n"));
  assert.ok(!out.slice(0, -1).includes("\n"));
});
