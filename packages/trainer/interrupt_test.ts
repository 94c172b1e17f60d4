// The trainer CLI in subprocesses: Ctrl-C between logging steps stops within a bound, a second
// Ctrl-C exits at once, a second process on the same run is refused, and a truncated newest
// checkpoint is skipped on resume.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gpuTest } from "@irforge/tensor/testing";
import { checkpointProblem } from "./resume.ts";
import { RunLock } from "./run_lock.ts";

const MAIN = fileURLToPath(new URL("../../apps/train/main.ts", import.meta.url));

/** The default tiny run, fast steps, never logging on its own within the test. */
function trainArgs(output: string, extra: string[] = []): string[] {
  const sets = [
    `training.output_dir=${output}`,
    "training.max_steps=100000",
    "training.logging_steps=5000",
    "training.eval_strategy=no",
    "training.save_strategy=steps",
    "training.save_steps=3",
    "training.save_total_limit=null",
    "training.per_device_train_batch_size=4",
  ];
  return ["run", "-A", MAIN, ...sets.flatMap((s) => ["--set", s]), ...extra];
}

function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    env: { XDG_RUNTIME_DIR: "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Waits (polling) until `check` holds; fails if the child ends first. */
async function waitFor(check: () => boolean, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  while (!check()) {
    if (exited) throw new Error("the training process ended before it was signalled");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The child's output, failing (and killing it) if it runs longer than `seconds`. */
async function outputWithin(child: Deno.ChildProcess, seconds: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the process did not exit within ${seconds} s`));
    }, seconds * 1000);
  });
  try {
    const out = await Promise.race([child.output(), timeout]);
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

const hasCheckpoint = (run: string, step: number) => () => {
  try {
    return Deno.statSync(join(run, "checkpoints", `checkpoint-${step}`)).isDirectory;
  } catch {
    return false;
  }
};

gpuTest(
  "train: Ctrl-C between logging steps stops after the step; locked and damaged resumes",
  async () => {
    if (Deno.build.os === "windows") return;
    const dir = await Deno.makeTempDir();
    try {
      const run = join(dir, "run");
      const child = spawn(trainArgs(run));
      await waitFor(hasCheckpoint(run, 6), child);
      const started = performance.now();
      child.kill("SIGINT");
      // Steps take well under a second here; before the fix the signal waited for step 5000.
      const first = await outputWithin(child, 60);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(first.code, 130, first.stdout + first.stderr);
      assert.match(first.stdout, /stopping after the current optimizer step/);
      const summary = JSON.parse(await Deno.readTextFile(join(run, "run.json")));
      assert.equal(summary.status, "interrupted", `after ${seconds} s`);
      const newest = summary.step as number;
      assert.ok(newest >= 6 && newest < 5000, String(newest));
      assert.equal(await checkpointProblem(join(run, "checkpoints", `checkpoint-${newest}`)), null);

      // A live holder of the run directory (this test process) keeps a second trainer out.
      const runJson = await Deno.readTextFile(join(run, "run.json"));
      const lock = await RunLock.acquire(run);
      const locked = await outputWithin(spawn(trainArgs(run, ["--resume", run])), 120);
      lock.release();
      assert.equal(locked.code, 2, locked.stdout + locked.stderr);
      assert.match(locked.stderr, new RegExp(`is in use by process ${Deno.pid} on `));
      assert.doesNotMatch(locked.stderr, /\n\s+at /);
      assert.equal(await Deno.readTextFile(join(run, "run.json")), runJson);

      // Truncate the newest checkpoint's weights: resume names it and continues from the one before.
      const damaged = join(run, "checkpoints", `checkpoint-${newest}`);
      const weights = [...Deno.readDirSync(damaged)].find((e) =>
        e.name.endsWith(".safetensors") && e.name !== "optimizer.safetensors"
      )!.name;
      const bytes = await Deno.readFile(join(damaged, weights));
      await Deno.writeFile(join(damaged, weights), bytes.subarray(0, bytes.length >> 1));
      const previous = Math.max(
        ...[...Deno.readDirSync(join(run, "checkpoints"))]
          .map((e) =>
            Number(/^checkpoint-(\d+)$/.exec(e.name)?.[1] ?? NaN)
          )
          .filter((s) => s < newest),
      );
      const resumed = await outputWithin(
        spawn(trainArgs(run, ["--resume", run, "--set", `training.max_steps=${previous + 1}`])),
        120,
      );
      assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
      assert.match(
        resumed.stdout,
        new RegExp(
          `skipping damaged checkpoint\\(s\\): checkpoint-${newest}: .*${weights}.*truncated`,
        ),
      );
      assert.match(resumed.stdout, new RegExp(`resumed .* from step ${previous} `));
      const after = JSON.parse(await Deno.readTextFile(join(run, "run.json")));
      assert.equal(after.status, "finished");
      assert.equal(after.step, previous + 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest("train: a second Ctrl-C exits at once, during an evaluation", async () => {
  if (Deno.build.os === "windows") return;
  const dir = await Deno.makeTempDir();
  try {
    const run = join(dir, "run");
    // The default run evaluates before its first step; the event loop turns during it, so
    // both signals arrive while it runs. Small eval batches make it last.
    const child = spawn(trainArgs(run, ["--set", "training.per_device_eval_batch_size=4"]));
    let text = "";
    const decoder = new TextDecoder();
    const reader = child.stdout.getReader();
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the process ended before printing ${pattern}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await until(/run directory: /);
    const started = performance.now();
    child.kill("SIGINT");
    await until(/stopping after the current optimizer step/);
    child.kill("SIGINT");
    await until(/second interrupt: exiting now/);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const { code } = await child.status;
    await child.stderr.cancel();
    const seconds = (performance.now() - started) / 1000;
    assert.equal(code, 130, text);
    assert.doesNotMatch(text, /eval step 0/); // it did not wait for the evaluation to end
    assert.ok(seconds < 30, `took ${seconds} s`);
    const summary = JSON.parse(await Deno.readTextFile(join(run, "run.json")));
    assert.equal(summary.status, "interrupted");
    await assert.rejects(Deno.stat(join(run, "train.lock")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
