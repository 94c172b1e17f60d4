import assert from "node:assert/strict";
import { join } from "node:path";
import { readBeirCorpus, readBeirQueries, sharedPath, sharedPathOrSkip } from "@irforge/data";
import { formatBm25Run, indexCorpus, retrieveAll } from "@irforge/eval";
import { DEFAULT_DIR } from "../default/mod.ts";
import { evalShare } from "../recipes/sharded_eval.ts";
import {
  mpiTest,
  type RanksOutcome,
  runRanks,
  runSingle as runScript,
  testdataScript,
} from "./testing.ts";

const SCRIPT = testdataScript("eval_ranks.ts");

Deno.test("evalShare: contiguous shares on whole units, covering every item once", () => {
  assert.deepEqual([0, 1].map((r) => evalShare(9, r, 2, 2)), [
    { start: 0, end: 4 },
    { start: 4, end: 9 },
  ]);
  assert.deepEqual([0, 1, 2].map((r) => evalShare(2, r, 3)), [
    { start: 0, end: 0 },
    { start: 0, end: 1 },
    { start: 1, end: 2 },
  ]);
});

const runSingle = (args: string[]): Promise<RanksOutcome> => runScript(SCRIPT, args);

/** Each recipe's evaluation on tiny data (null: its shared data is absent, the case skips). */
const CASES: Record<string, (dir: string) => Promise<string | null>> = {
  async crossencoder(dir) {
    const corpus = await readBeirCorpus(join(DEFAULT_DIR, "data", "corpus.jsonl"));
    const queries = await readBeirQueries(join(DEFAULT_DIR, "data", "queries.jsonl"));
    const run = join(dir, "bm25.txt");
    await Deno.writeTextFile(
      run,
      formatBm25Run(retrieveAll(indexCorpus(corpus), queries, 10), "bm25"),
    );
    const data = join(DEFAULT_DIR, "data");
    return `recipe: crossencoder
model: { model_name_or_path: "random-init:${DEFAULT_DIR}/tiny-llama", use_lora: false, pooling: last }
data:
  corpus_path: ${data}/corpus.jsonl
  queries_path: ${data}/queries.jsonl
  qrels_path: ${data}/qrels/train.tsv
  eval_qrels_path: ${data}/qrels/test.tsv
  run_path: ${run}
  max_eval_samples: 9
  query_max_len: 8
  passage_max_len: 16
training: { per_device_eval_batch_size: 4 }
`;
  },
  blockrank() {
    if (!sharedPathOrSkip("sharded blockrank evaluation", "data", "trec-dl19")) {
      return Promise.resolve(null);
    }
    const dl19 = (file: string) => sharedPath("data", "trec-dl19", file);
    return Promise.resolve(`recipe: blockrank
model:
  model_name_or_path: random-init:${DEFAULT_DIR}/tiny-llama
  use_blockrank: true
  use_lora: false
data:
  data_path: ${dl19("retrieve_results_dl19.json")}
  qrels_path: ${dl19("qrels.dl19-passage.txt")}
  num_documents: 4
  max_block_length: 32
  train_test_split: 0.2
  min_score: 2
training: { per_device_eval_batch_size: 2, use_aux_loss: true }
`);
  },
  listwise() {
    const stories = sharedPathOrSkip("sharded listwise evaluation", "data", "stories260K");
    const novel = sharedPathOrSkip("sharded listwise evaluation", "data", "noveleval");
    if (!stories || !novel) return Promise.resolve(null);
    return Promise.resolve(`recipe: listwise
model: { model_name_or_path: "${stories}", use_lora: false }
data:
  data_path: ${join(novel, "data.json")}
  qrels_path: ${join(novel, "qrels.txt")}
  window_size: 6
  stride: 6
  passage_max_len: 5
  query_max_len: 12
  max_seq_length: 1024
  train_test_split: 0.3
  max_eval_samples: 2
training: { objective: ranking }
`);
  },
  sft() {
    const stories = sharedPathOrSkip("sharded sft evaluation", "data", "stories260K");
    const hotpot = sharedPathOrSkip(
      "sharded sft evaluation",
      "data",
      "hotpotqa-dev-100",
      "hotpot_dev_distractor_v1.json",
    );
    if (!stories || !hotpot) return Promise.resolve(null);
    return Promise.resolve(`recipe: sft
model: { model_name_or_path: "${stories}", use_lora: false }
data: { data_path: "${hotpot}", max_seq_length: 48, train_test_split: 0.1, max_eval_samples: 3 }
training: { per_device_eval_batch_size: 2 }
`);
  },
};

for (const [recipe, write] of Object.entries(CASES)) {
  mpiTest(
    `sharded evaluation (${recipe}): 2 ranks, each a share of the queries/examples, merged = one process's metrics, per-query values and run`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: `irforge-eval-${recipe}-` });
      try {
        const text = await write(dir);
        if (text === null) return;
        const path = join(dir, "config.yaml");
        await Deno.writeTextFile(path, text);
        const single = await runSingle(["--config", path]);
        const ranks = await runRanks(2, SCRIPT, ["--config", path]);
        assert.equal(single.code, 0, single.stderr);
        assert.equal(ranks.code, 0, ranks.stderr);
        const one = single.results.get(0)!;
        assert.ok(Object.keys(one.metrics as object).length >= 3, JSON.stringify(one.metrics));
        for (const rank of [0, 1]) {
          const r = ranks.results.get(rank)!;
          assert.deepEqual(r.metrics, one.metrics, `rank ${rank} metrics`);
          assert.deepEqual(r.perQuery, one.perQuery, `rank ${rank} per-query values`);
          assert.equal(r.runText, one.runText, `rank ${rank} run`);
        }
        // Each rank worked through a share: its progress lines count fewer items than one process.
        const total = (r: Record<string, unknown>) =>
          (r.progress as string[]).map((l) => Number(/ (\d+)\/(\d+)/.exec(l)?.[2] ?? 0))
            .reduce((a, b) => Math.max(a, b), 0);
        const whole = total(one), share0 = total(ranks.results.get(0)!);
        const share1 = total(ranks.results.get(1)!);
        assert.ok(
          whole > 0 && share0 < whole && share1 < whole,
          `${share0}, ${share1} of ${whole}`,
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
