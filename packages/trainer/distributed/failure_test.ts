import assert from "node:assert/strict";
import { join } from "node:path";
import { openCheckpoint } from "@irforge/model/safetensors";
import { findMpiexec } from "./launch.ts";
import { findResumeCheckpoint, parseTrainerState } from "../run_dir.ts";
import { mpiTest, runRanks, testdataScript } from "./testing.ts";

const SCRIPT = testdataScript("train_ranks.ts");
const LORA = [
  "--recipe",
  "biencoder",
  ...[
    "model.use_lora=true",
    "model.lora_r=4",
    "training.per_device_train_batch_size=2",
  ].flatMap((s) => ["--set", s]),
];

mpiTest(
  "failure: a rank that throws ends every rank within 60 s; rank 0 records its error",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "irforge-dp-throw-" });
    try {
      const out = await runRanks(2, SCRIPT, [
        "--out",
        dir,
        ...LORA,
        "--set",
        "training.max_steps=50",
        "--fail-rank",
        "1",
        "--fail-step",
        "3",
      ]);
      assert.ok(out.seconds < 60, `took ${out.seconds} s`);
      assert.notEqual(out.code, 0);
      // The failing rank's error reaches the terminal and rank 0's run record.
      assert.match(out.stderr, /rank 1\/2: Error: injected failure on rank 1/);
      const summary = JSON.parse(await Deno.readTextFile(join(dir, "run", "run.json")));
      assert.equal(summary.status, "failed");
      assert.equal(summary.error, "rank 1 failed: injected failure on rank 1");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

mpiTest(
  "failure: killing one rank ends the job with its error within 60 s; checkpoints stay loadable",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "irforge-dp-kill-" });
    const child = new Deno.Command(findMpiexec()!, {
      args: [
        "-np",
        "2",
        Deno.execPath(),
        "run",
        "-A",
        SCRIPT,
        "--out",
        dir,
        ...LORA,
        ...["training.max_steps=500", "training.save_strategy=steps", "training.save_steps=1"]
          .flatMap((s) => ["--set", s]),
      ],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    let stdout = "", stderr = "";
    const collectOut = (async () => {
      for await (const chunk of child.stdout) stdout += decoder.decode(chunk, { stream: true });
    })();
    const collectErr = (async () => {
      for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
    })();
    try {
      // Wait until rank 1 said its pid and rank 0 committed checkpoint 2.
      const deadline = Date.now() + 120_000;
      let pid: number | undefined;
      while (Date.now() < deadline) {
        pid ??= Number(/^PID 1 (\d+)$/m.exec(stdout)?.[1] ?? NaN) || undefined;
        let saved = false;
        try {
          saved = Deno.statSync(join(dir, "run", "checkpoints", "checkpoint-2")).isDirectory;
        } catch { /* not yet */ }
        if (pid && saved) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(pid, `rank 1 never reported its pid: ${stdout}\n${stderr}`);
      const killed = performance.now();
      Deno.kill(pid, "SIGKILL");
      const status = await child.status;
      const seconds = (performance.now() - killed) / 1000;
      await Promise.all([collectOut, collectErr]);
      assert.ok(seconds < 60, `the job took ${seconds} s to end`);
      assert.notEqual(status.code, 0);
      // The launcher names the killed rank's process and its signal.
      const all = stdout + stderr;
      assert.match(all, new RegExp(`PID ${pid}`));
      assert.match(all, /signal 9|KILLED/i);
      // The newest complete checkpoint loads: trainer state and adapter.
      const checkpoint = await findResumeCheckpoint(join(dir, "run"));
      assert.ok(checkpoint.step >= 2);
      const state = parseTrainerState(
        await Deno.readTextFile(join(checkpoint.path, "trainer_state.json")),
        "trainer_state.json",
      );
      assert.equal(state.step, checkpoint.step);
      const adapter = await openCheckpoint(join(checkpoint.path, "adapter_model.safetensors"));
      try {
        assert.ok(adapter.names().length > 0);
        for (const name of adapter.names()) await adapter.read(name, { as: "f32" });
      } finally {
        adapter.close();
      }
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already ended */ }
      await Deno.remove(dir, { recursive: true });
    }
  },
);
