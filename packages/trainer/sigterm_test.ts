import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gpuTest } from "@irforge/tensor/testing";

const MAIN = fileURLToPath(new URL("../../apps/train/main.ts", import.meta.url));

/** Waits until `metrics.jsonl` under `parent` has a training record (the run is mid-way). */
async function waitForTrainingRecord(parent: string, child: Deno.ChildProcess): Promise<string> {
  let exited = false;
  child.status.then(() => exited = true);
  for (;;) {
    if (exited) throw new Error("the training process ended before it was signalled");
    for (const entry of Deno.readDirSync(parent)) {
      try {
        const text = Deno.readTextFileSync(join(parent, entry.name, "metrics.jsonl"));
        if (text.includes("train/loss")) return join(parent, entry.name);
      } catch {
        // not written yet
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

gpuTest("loop: SIGTERM checkpoints and marks the run interrupted (exit 130)", async () => {
  if (Deno.build.os === "windows") return;
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--set",
        `training.output_dir=${join(dir, "run")}`,
        "--set",
        "training.max_steps=100000",
        "--set",
        "training.logging_steps=1",
        "--set",
        "training.eval_strategy=no",
        "--set",
        "training.save_strategy=no",
        "--set",
        "training.per_device_train_batch_size=4",
      ],
      env: { XDG_RUNTIME_DIR: "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const runPath = await waitForTrainingRecord(dir, child);
    child.kill("SIGTERM");
    const { code, stdout } = await child.output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 130, out);
    const summary = JSON.parse(await Deno.readTextFile(join(runPath, "run.json")));
    assert.equal(summary.status, "interrupted");
    const checkpoints = [...Deno.readDirSync(join(runPath, "checkpoints"))].map((e) => e.name);
    assert.deepEqual(checkpoints, [`checkpoint-${summary.step}`]);
    assert.match(out, /resume with --resume/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
