import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, mean, mul, sub, Tensor as T, variable } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { parseConfig } from "./config/parse.ts";
import { type MicroBatchResult, train, type TrainingTask } from "./loop.ts";
import { PROFILE_FILE, type RunProfile } from "./profile.ts";

gpuTest(
  "profile_steps: one step's per-op GPU profile is logged once into profile.json",
  async () => {
    const device = await getDevice();
    if (!device.hasTimestamps) return;
    const dir = await Deno.makeTempDir();
    try {
      const w = variable(T.fromArray([0.5, -0.25, 1, 0], [4]).keep());
      const task: TrainingTask = {
        recipe: "quadratic",
        parameters: new Map([["w", w]]),
        batchesPerEpoch: 4,
        microBatch(_epoch, index): Promise<MicroBatchResult> {
          const d = sub(w, T.fromArray([index, 1, 0.5, 2], [4]));
          return Promise.resolve({ loss: mean(mul(d, d)), tokens: 4 });
        },
        saveWeights: () => Promise.resolve(),
        loadWeights: () => Promise.resolve(),
      };
      const lines: string[] = [];
      const result = await train({
        config: parseConfig(
          `recipe: biencoder
model: {model_name_or_path: unused, use_lora: false}
data: {data_path: unused}
training: {output_dir: ${dir}, max_steps: 3, gradient_accumulation_steps: 2, logging_steps: 1,
  save_strategy: "no", profile_steps: 2}
`,
          "test.yaml",
        ),
        task,
        log: (l) => lines.push(l),
        progress: false,
        handleSignals: false,
      });
      assert.equal(result.status, "finished", result.error?.message);
      const profile = JSON.parse(
        await Deno.readTextFile(join(result.runPath, PROFILE_FILE)),
      ) as RunProfile;
      assert.equal(profile.step, 2);
      assert.equal(profile.timedDispatches, profile.dispatches, "every dispatch of the step timed");
      assert.equal(profile.rows.reduce((n, r) => n + r.dispatches, 0), profile.dispatches);
      const ops = profile.rows.map((r) => r.op);
      // Two micro-batches' forward and backward, clipping and one AdamW launch.
      for (const op of ["sub", "mul", "mean", "mean.backward", "adamw", "clip-total"]) {
        assert(ops.includes(op), `${op} in ${ops.join(", ")}`);
      }
      assert.equal(profile.rows.find((r) => r.op === "adamw")!.dispatches, 1);
      assert.equal(profile.rows.find((r) => r.op === "sub")!.dispatches, 2);
      assert.equal(lines.filter((l) => /GPU time per op over step 2/.test(l)).length, 1);
      // Peak GPU memory is in every record (the pool's peak over that record's step).
      const records = (await Deno.readTextFile(join(result.runPath, "metrics.jsonl"))).trim()
        .split("\n").map((l) => JSON.parse(l)).filter((r) => "train/loss" in r);
      assert.equal(records.length, 3);
      for (const r of records) {
        assert(
          r.gpu_memory_bytes > 0,
          `gpu_memory_bytes ${r.gpu_memory_bytes}`,
        );
      }
      w.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
