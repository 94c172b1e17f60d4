import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_CONFIG_PATH, DEFAULT_DIR } from "@irforge/trainer";
import { mpiTest } from "@irforge/trainer/distributed/testing";
import { withoutNproc } from "@irforge/trainer/distributed";
import { main } from "./main.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

Deno.test("train CLI: --nproc is validated, and removed from what each rank is given", async () => {
  const err: string[] = [];
  const { code } = await main(["--nproc", "two"], () => {}, (l) => err.push(l));
  assert.equal(code, 2);
  assert.match(err.join("\n"), /--nproc: expected an integer ≥ 1, got "two"/);
  assert.deepEqual(withoutNproc(["--nproc", "2", "--set", "a=1", "--nproc=3", "-h"]), [
    "--set",
    "a=1",
    "-h",
  ]);
});

mpiTest(
  "train CLI: --nproc 2 launches 2 ranks with mpiexec; rank 0 alone writes the run",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "irforge-nproc-" });
    try {
      const config = join(dir, "default.yaml");
      await Deno.writeTextFile(
        config,
        (await Deno.readTextFile(DEFAULT_CONFIG_PATH)).replaceAll("$DEFAULT_DIR", DEFAULT_DIR),
      );
      // The CLI as a user runs it (a child process: it launches mpiexec and waits for it).
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "--nproc",
          "2",
          "--config",
          config,
          ...[
            `training.output_dir=${join(dir, "runs")}`,
            "training.max_steps=2",
            "training.logging_steps=1",
            "training.eval_strategy=no",
            "training.per_device_train_batch_size=4",
          ].flatMap((s) => ["--set", s]),
        ],
        env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(output.stdout);
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      // Rank 0 alone reports: one "run finished" line.
      assert.equal(stdout.match(/data parallel: 2 ranks/g)?.length, 1, stdout);
      assert.equal(stdout.match(/run finished: /g)?.length, 1, stdout);
      // output_dir is the run directory: rank 0 created it, nothing else was written.
      const written = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(written, ["default.yaml", "runs"]);
      const run = join(dir, "runs");
      const summary = JSON.parse(await Deno.readTextFile(join(run, "run.json")));
      assert.equal(summary.status, "finished");
      const records = (await Deno.readTextFile(join(run, "metrics.jsonl"))).trim().split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(records.map((r) => r.step), [1, 2]);
      // The checkpoint at the end: rank 0's, in the one run directory.
      assert.ok(Deno.statSync(join(run, "checkpoints", "checkpoint-2")).isDirectory);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
