import assert from "node:assert/strict";
import { join } from "node:path";
import { readBeirCorpus, readBeirQueries } from "@irforge/data";
import { formatBm25Run, indexCorpus, retrieveAll } from "@irforge/eval";
import { DEFAULT_DIR } from "../default/mod.ts";
import {
  mpiTest,
  type RanksOutcome,
  runRanks,
  runSingle as runScript,
  testdataScript,
} from "./testing.ts";

const SCRIPT = testdataScript("train_ranks.ts");

/** Runs the test script in one process (no MPI), like a user's plain `deno task train`. */
const runSingle = (args: string[]): Promise<RanksOutcome> => runScript(SCRIPT, args);

/** A BM25 top-10 run of the default collection (the cross-encoder reranks it). */
async function bm25RunFile(dir: string): Promise<string> {
  const corpus = await readBeirCorpus(join(DEFAULT_DIR, "data", "corpus.jsonl"));
  const queries = await readBeirQueries(join(DEFAULT_DIR, "data", "queries.jsonl"));
  const path = join(dir, "bm25.txt");
  await Deno.writeTextFile(
    path,
    formatBm25Run(retrieveAll(indexCorpus(corpus), queries, 10), "bm25"),
  );
  return path;
}

/** The trained parameters rank 0 wrote. */
async function params(dir: string): Promise<Float32Array> {
  return new Float32Array((await Deno.readFile(join(dir, "params.f32"))).buffer);
}

/** Asserts equal losses, global grad norms (1e-6 relative) and parameters (see below). */
export async function assertSameTraining(
  single: RanksOutcome,
  ranks: RanksOutcome,
  singleDir: string,
  ranksDir: string,
): Promise<void> {
  assert.equal(single.code, 0, single.stderr);
  assert.equal(ranks.code, 0, ranks.stderr);
  const one = single.results.get(0)!, zero = ranks.results.get(0)!;
  assert.equal(one.status, "finished", String(one.error));
  assert.equal(zero.status, "finished", String(zero.error));
  assert.equal(ranks.results.get(1)!.status, "finished");
  const a = one.losses as { step: number; loss: number }[];
  const b = zero.losses as { step: number; loss: number }[];
  assert.deepEqual(b.map((x) => x.step), [1, 2, 3]);
  assert.deepEqual(a.map((x) => x.step), [1, 2, 3]);
  a.forEach((x, i) => {
    const rel = Math.abs(b[i]!.loss - x.loss) / Math.abs(x.loss);
    assert.ok(rel <= 1e-6, `step ${x.step}: loss ${b[i]!.loss} (2 ranks) vs ${x.loss}`);
  });
  // The pre-clip global gradient norm (Adam alone would hide a gradient scaled by the ranks).
  const norms = async (dir: string) =>
    (await Deno.readTextFile(join(dir, "run", "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l)).filter((r) => "train/grad_norm" in r)
      .map((r) => r["train/grad_norm"] as number);
  const na = await norms(singleDir), nb = await norms(ranksDir);
  assert.equal(na.length, 3);
  na.forEach((n, i) => {
    assert.ok(Math.abs(nb[i]! - n) <= 1e-6 * n, `step ${i + 1}: grad norm ${nb[i]} vs ${n}`);
  });
  assert.ok(na[0]! > 0.5, `clipping is exercised (norm ${na[0]})`);
  // Both ranks log the same averaged loss.
  assert.deepEqual(ranks.results.get(1)!.losses, b);
  const pa = await params(singleDir), pb = await params(ranksDir);
  assert.equal(pb.length, pa.length);
  // All trained parameters: ‖θ₂ − θ₁‖ ≤ 1e-6·‖θ₁‖. Per tensor the bound is 1e-5: the two runs
  // pad batches differently, and AdamW's normalised update magnifies f32 rounding in the
  // gradient components near zero of small tensors (LoRA B starts at 0).
  const sizes = one.sizes as number[], names = one.names as string[];
  let at = 0, diffAll = 0, normAll = 0;
  sizes.forEach((n, i) => {
    let diff = 0, norm = 0;
    for (let j = at; j < at + n; j++) diff += (pb[j]! - pa[j]!) ** 2, norm += pa[j]! ** 2;
    assert.ok(
      Math.sqrt(diff) <= 1e-5 * Math.sqrt(norm),
      `${names[i]}: relative difference ${Math.sqrt(diff / norm)}`,
    );
    diffAll += diff, normAll += norm;
    at += n;
  });
  assert.ok(
    Math.sqrt(diffAll) <= 1e-6 * Math.sqrt(normAll),
    `parameters: relative difference ${Math.sqrt(diffAll / normAll)}`,
  );
}

/** Files rank 0 wrote (the only writer) under `dir`. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    out.push(entry.name);
    if (entry.isDirectory) {
      for (const sub of listTree(join(dir, entry.name))) out.push(`${entry.name}/${sub}`);
    }
  }
  return out.sort();
}

for (const mode of ["lora", "full"] as const) {
  mpiTest(
    `data parallel (${mode}): 2 ranks × micro-batch 2 = 1 process × micro-batch 4`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: `irforge-dp-${mode}-` });
      try {
        const run = await bm25RunFile(dir);
        const sets = [
          `data.run_path=${run}`,
          "model.pooling=last",
          "data.group_size=2",
          "training.max_steps=3",
          "training.learning_rate=0.001",
          // Small enough that the global norm is clipped.
          "training.max_grad_norm=0.5",
          ...(mode === "lora"
            ? ["model.use_lora=true", "model.lora_r=4", "model.lora_dropout=0"]
            : ["model.use_lora=false"]),
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
        await assertSameTraining(single, ranks, singleDir, ranksDir);
        // Rank 0 alone wrote the run directory: one run, finished, three records.
        assert.deepEqual(listTree(ranksDir).filter((p) => !p.startsWith("run/")), [
          "params.f32",
          "run",
        ]);
        const summary = JSON.parse(await Deno.readTextFile(join(ranksDir, "run", "run.json")));
        assert.equal(summary.status, "finished");
        const records = (await Deno.readTextFile(join(ranksDir, "run", "metrics.jsonl"))).trim()
          .split("\n");
        assert.equal(records.length, 3);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

/** The bi-encoder's LoRA settings and a held-out evaluation after step 3. */
const BIENCODER = [
  "--recipe",
  "biencoder",
  ...[
    "training.learning_rate=0.003",
    "training.max_grad_norm=0.5",
    "model.use_lora=true",
    "model.lora_r=4",
  ].flatMap((s) => ["--set", s]),
];

mpiTest(
  "bi-encoder: cross-rank in-batch negatives on 2 ranks = 1 process with the whole batch; sharded evaluation = one process's",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "irforge-dp-biencoder-" });
    try {
      const sets = [
        ...BIENCODER,
        ...[
          "training.max_steps=3",
          "model.lora_dropout=0",
          "training.eval_strategy=steps",
          "training.eval_steps=3",
          "data.max_eval_samples=48",
        ].flatMap((s) => ["--set", s]),
      ];
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
      await assertSameTraining(single, ranks, singleDir, ranksDir);
      const evalOf = async (d: string) =>
        JSON.parse(await Deno.readTextFile(join(d, "run", "eval", "step-3.json"))).metrics;
      const a = await evalOf(singleDir), b = await evalOf(ranksDir);
      assert.ok(Object.keys(a).length >= 4);
      for (const [k, v] of Object.entries(a)) {
        assert.ok(Math.abs((b[k] as number) - (v as number)) <= 1e-9, `eval ${k}: ${b[k]} vs ${v}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

mpiTest(
  "resume with 2 ranks is exact (LoRA dropout on: the random streams resume too)",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "irforge-dp-resume-" });
    try {
      const sets = [
        ...BIENCODER,
        ...[
          "training.max_steps=4",
          "model.lora_dropout=0.1",
          "training.per_device_train_batch_size=2",
        ]
          .flatMap((s) => ["--set", s]),
      ];
      const straightDir = join(dir, "straight"), splitDir = join(dir, "split");
      const straight = await runRanks(2, SCRIPT, ["--out", straightDir, ...sets]);
      assert.equal(straight.code, 0, straight.stderr);
      const first = await runRanks(2, SCRIPT, [
        "--out",
        splitDir,
        ...sets,
        "--interrupt-after",
        "2",
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.results.get(0)!.status, "interrupted");
      assert.equal(first.results.get(1)!.status, "interrupted");
      const runPath = first.results.get(0)!.runPath as string;
      const second = await runRanks(2, SCRIPT, ["--out", splitDir, ...sets, "--resume", runPath]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.results.get(0)!.status, "finished");
      const losses = (o: RanksOutcome) => o.results.get(0)!.losses as { loss: number }[];
      assert.deepEqual(
        [...losses(first), ...losses(second)].map((x) => x.loss),
        losses(straight).map((x) => x.loss),
      );
      assert.deepEqual(await params(splitDir), await params(straightDir));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
