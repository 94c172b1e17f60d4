import assert from "node:assert/strict";
import { join } from "node:path";
import {
  mpiTest,
  type RanksOutcome,
  runRanks,
  runSingle as runScript,
  testdataScript,
} from "./testing.ts";

const SCRIPT = testdataScript("distill_ranks.ts");

/** Runs the distill script in one process (no MPI). */
const runSingle = (args: string[]): Promise<RanksOutcome> => runScript(SCRIPT, args);

function assertRelative(actual: number, expected: number, tolerance: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.abs(expected),
    `${what}: ${actual} (2 ranks) vs ${expected} (1 process)`,
  );
}

/** `train/grad_norm` of each record of one phase's metrics.jsonl. */
async function gradNorms(phaseDir: string): Promise<number[]> {
  return (await Deno.readTextFile(join(phaseDir, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/grad_norm" in r)
    .map((r) => r["train/grad_norm"] as number);
}

mpiTest(
  "distill: 2 ranks × micro-batch 2 = 1 process × micro-batch 4 in both phases (phase 2's negatives and MSE rows gathered across ranks); sharded evaluation = one process's",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "irforge-dp-distill-" });
    try {
      const sets = [
        "training.max_steps=3",
        "training.learning_rate=0.003",
        "training.max_grad_norm=0.5", // small enough that the global norm is clipped
        "training.eval_strategy=steps",
        "training.eval_steps=3",
        "data.max_eval_samples=48",
      ].flatMap((s) => ["--set", s]);
      const singleDir = join(dir, "single"), ranksDir = join(dir, "ranks");
      const single = await runSingle([
        "--out",
        singleDir,
        ...sets,
        "--set",
        "training.per_device_train_batch_size=4",
      ]);
      const ranks = await runRanks(2, SCRIPT, [
        "--out",
        ranksDir,
        ...sets,
        "--set",
        "training.per_device_train_batch_size=2",
      ]);
      assert.equal(single.code, 0, single.stderr);
      assert.equal(ranks.code, 0, ranks.stderr);
      const one = single.results.get(0)!, zero = ranks.results.get(0)!;
      for (const r of [one, zero, ranks.results.get(1)!]) {
        assert.equal(r.status, "finished", String(r.error));
      }
      for (const phase of ["phase1", "phase2"] as const) {
        const a = one[phase] as { step: number; loss: number }[];
        const b = zero[phase] as { step: number; loss: number }[];
        assert.deepEqual(a.map((x) => x.step), [1, 2, 3]);
        assert.deepEqual(b.map((x) => x.step), [1, 2, 3]);
        a.forEach((x, i) => assertRelative(b[i]!.loss, x.loss, 1e-6, `${phase} step ${x.step}`));
        assert.deepEqual(ranks.results.get(1)![phase], b, "both ranks log the averaged loss");
        const na = await gradNorms(join(singleDir, "run", phase));
        const nb = await gradNorms(join(ranksDir, "run", phase));
        assert.equal(na.length, 3);
        na.forEach((n, i) => assertRelative(nb[i]!, n, 1e-6, `${phase} grad norm ${i + 1}`));
        assert.ok(na[0]! > 0.5, `${phase}: clipping is exercised (norm ${na[0]})`);
        const evalOf = async (d: string) =>
          JSON.parse(await Deno.readTextFile(join(d, "run", phase, "eval", "step-3.json")))
            .metrics as Record<string, number>;
        const ea = await evalOf(singleDir), eb = await evalOf(ranksDir);
        assert.ok(Object.keys(ea).length >= 4);
        for (const [k, v] of Object.entries(ea)) {
          assert.ok(Math.abs(eb[k]! - v) <= 1e-9, `${phase} eval ${k}: ${eb[k]} vs ${v}`);
        }
      }
      // Parameters after both phases: ‖θ₂ − θ₁‖ ≤ 1e-6·‖θ₁‖.
      const read = async (d: string) =>
        new Float32Array((await Deno.readFile(join(d, "params.f32"))).buffer);
      const pa = await read(singleDir), pb = await read(ranksDir);
      assert.equal(pb.length, pa.length);
      let diff = 0, norm = 0;
      for (let j = 0; j < pa.length; j++) diff += (pb[j]! - pa[j]!) ** 2, norm += pa[j]! ** 2;
      assert.ok(
        Math.sqrt(diff) <= 1e-6 * Math.sqrt(norm),
        `parameters: relative difference ${Math.sqrt(diff / norm)}`,
      );
      // One packed all-reduce per step: the student's gradients plus a few scalars.
      const gradValues = (one.sizes as number[]).reduce((a, b) => a + b, 0);
      const bytes = zero.stepBytes as number;
      assert.ok(bytes >= gradValues * 4 && bytes < gradValues * 4 + 256, `${bytes} bytes/step`);
      // Rank 0 alone wrote: one distill run with both phases, each finished.
      for (const phase of ["phase1", "phase2"]) {
        const summary = JSON.parse(
          await Deno.readTextFile(join(ranksDir, "run", phase, "run.json")),
        );
        assert.equal(summary.status, "finished");
      }
      assert.deepEqual([...Deno.readDirSync(ranksDir)].map((e) => e.name).sort(), [
        "params.f32",
        "run",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
