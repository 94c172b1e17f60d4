import assert from "node:assert/strict";
import {
  learningRateAt,
  lrMultiplier,
  stepsPerEpoch,
  totalTrainingSteps,
  warmupSteps,
} from "./schedule.ts";
import type { SchedulerType } from "./config/schema.ts";

/**
 * Reference written from HF `optimization.py`'s definitions, phrased
 * differently (warm-up fraction, then the decay as a function of the fraction
 * of decay done) so that a transcription slip in one shows up against the other.
 */
function reference(
  type: SchedulerType,
  step: number,
  warmup: number,
  total: number,
): number {
  if (type === "constant") return 1;
  const inWarmup = step < warmup;
  if (inWarmup) return warmup === 0 ? 0 : step / warmup;
  if (type === "constant_with_warmup") return 1;
  const decaySteps = total - warmup;
  const done = decaySteps <= 0 ? (step - warmup) : (step - warmup) / decaySteps;
  if (type === "linear") return decaySteps <= 0 ? Math.max(0, total - step) : Math.max(0, 1 - done);
  // cosine, num_cycles 0.5: half a cosine from 1 down to 0.
  return Math.max(0, (1 + Math.cos(Math.PI * done)) / 2);
}

Deno.test("lrMultiplier matches the HF definitions for every schedule and step", () => {
  const types: SchedulerType[] = ["linear", "cosine", "constant", "constant_with_warmup"];
  for (const type of types) {
    for (const [warmup, total] of [[0, 10], [3, 10], [10, 10], [1, 1], [0, 1], [5, 100], [7, 3]]) {
      for (let step = 0; step <= total! + 3; step++) {
        const got = lrMultiplier(step, { type, warmupSteps: warmup!, totalSteps: total! });
        const want = reference(type, step, warmup!, total!);
        assert.ok(
          Math.abs(got - want) < 1e-15,
          `${type} w=${warmup} t=${total} s=${step}: ${got} vs ${want}`,
        );
      }
    }
  }
});

Deno.test("learningRateAt: known values (HF indexing: step k uses lambda(k))", () => {
  const base = 1e-4;
  const linear = { type: "linear" as const, base, warmupSteps: 2, totalSteps: 10 };
  // Warm-up: 0, base/2; then linear decay (10 - k) / 8.
  assert.deepEqual(
    [0, 1, 2, 6, 10, 11].map((k) => learningRateAt(k, linear)),
    [0, 5e-5, 1e-4, 1e-4 * 4 / 8, 0, 0],
  );
  const cosine = { ...linear, type: "cosine" as const };
  assert.equal(learningRateAt(2, cosine), 1e-4);
  // Halfway through the decay: cos(pi/2) → exactly half.
  assert.ok(Math.abs(learningRateAt(6, cosine) - 5e-5) < 1e-20);
  assert.ok(Math.abs(learningRateAt(4, cosine) - 1e-4 * (1 + Math.SQRT1_2) / 2) < 1e-19);
  assert.equal(learningRateAt(10, cosine), 0);
  assert.equal(learningRateAt(0, { ...linear, type: "constant" }), 1e-4);
  assert.equal(learningRateAt(1, { ...linear, type: "constant_with_warmup" }), 5e-5);
  assert.equal(learningRateAt(9, { ...linear, type: "constant_with_warmup" }), 1e-4);
});

Deno.test("warmupSteps: warmup_steps wins, else ceil(total * ratio) as HF", () => {
  assert.equal(warmupSteps(1000, { warmup_steps: 0, warmup_ratio: 0.03 }), 30);
  assert.equal(warmupSteps(999, { warmup_steps: 0, warmup_ratio: 0.03 }), 30); // 29.97 → 30
  assert.equal(warmupSteps(10, { warmup_steps: 0, warmup_ratio: 0.01 }), 1); // 0.1 → 1
  assert.equal(warmupSteps(100, { warmup_steps: 0, warmup_ratio: 0 }), 0);
  assert.equal(warmupSteps(100, { warmup_steps: 7, warmup_ratio: 0 }), 7);
});

Deno.test("totalTrainingSteps: max_steps wins, else ceil(epochs * steps per epoch)", () => {
  const t = { max_steps: -1, num_train_epochs: 3, gradient_accumulation_steps: 4 };
  assert.equal(stepsPerEpoch(10, t), 2);
  assert.equal(stepsPerEpoch(3, t), 1);
  assert.equal(totalTrainingSteps(10, t), 6);
  assert.equal(totalTrainingSteps(10, { ...t, num_train_epochs: 1.5 }), 3);
  assert.equal(totalTrainingSteps(10, { ...t, num_train_epochs: 1.25 }), 3); // ceil(2.5)
  assert.equal(totalTrainingSteps(10, { ...t, max_steps: 17 }), 17);
});
