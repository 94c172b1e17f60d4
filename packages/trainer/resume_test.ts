import assert from "node:assert/strict";
import { join } from "node:path";
import { InputError } from "@irforge/data/input-error";
import { writeSafetensors } from "@irforge/model/safetensors";
import { Rng } from "./rng.ts";
import { RunDir } from "./run_dir.ts";
import { checkpointProblem, openResume } from "./resume.ts";
import { LOCK_FILE, RunLockedError } from "./run_lock.ts";

/** A run directory with complete checkpoints at `steps`, as the trainer writes them. */
async function fakeRun(dir: string, steps: number[]): Promise<string> {
  const run = await RunDir.create(join(dir, "run"), { recipe: "biencoder", totalSteps: 100 });
  for (const step of steps) {
    const tmp = await run.beginCheckpoint(step);
    const data = new Float32Array(64).fill(step);
    await writeSafetensors(join(tmp, "model.safetensors"), [["w", {
      dtype: "F32",
      shape: [8, 8],
      data,
    }]]);
    await Deno.writeTextFile(join(tmp, "config.json"), "{}");
    await run.commitCheckpoint(step, {
      step,
      epoch: step / 10,
      data_position: { epoch: 0, index: step },
      rng_state: Rng.seeded(1).state(),
      best: null,
    });
  }
  await run.finish("interrupted");
  return run.path;
}

async function truncate(path: string, keep: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, keep));
}

Deno.test("checkpointProblem: names a truncated safetensors file, bad JSON and a bad trainer_state", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await fakeRun(dir, [3]);
    const ckpt = join(run, "checkpoints", "checkpoint-3");
    assert.equal(await checkpointProblem(ckpt), null);
    const model = join(ckpt, "model.safetensors");
    await truncate(model, 100);
    assert.match((await checkpointProblem(ckpt))!, new RegExp(`^${model}.*truncated`));
    await Deno.writeTextFile(join(ckpt, "trainer_state.json"), '{"step": 3');
    assert.match((await checkpointProblem(ckpt))!, /trainer_state\.json: not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openResume: skips a damaged newest checkpoint; refuses a damaged one named explicitly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await fakeRun(dir, [3, 6]);
    const newest = join(run, "checkpoints", "checkpoint-6");
    await truncate(join(newest, "model.safetensors"), 200);
    const lines: string[] = [];
    const point = await openResume(run, "biencoder", (l) => lines.push(l));
    assert.equal(point.checkpoint.step, 3);
    assert.match(lines.join("\n"), /skipping damaged checkpoint\(s\): checkpoint-6: .*truncated/);
    // The lock is held until released: a second resume is refused.
    await assert.rejects(openResume(run, "biencoder", () => {}), RunLockedError);
    point.lock?.release();
    await assert.rejects(
      openResume(newest, "biencoder", () => {}),
      (e: unknown) =>
        e instanceof InputError && e.message.includes("damaged checkpoint") &&
        e.message.includes(`resume from ${join(run, "checkpoints", "checkpoint-3")}`),
    );
    await assert.rejects(
      openResume(run, "crossencoder", () => {}),
      /trained by the biencoder recipe but the configuration is crossencoder/,
    );
    // Every failure released the lock.
    await assert.rejects(Deno.stat(join(run, LOCK_FILE)), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
