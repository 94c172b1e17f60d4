import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, Tensor } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import {
  collate,
  hasShared,
  layoutBlockRank,
  type RankingExample,
  sharedPath,
  TokenKind,
} from "@irforge/data";
import { generate } from "@irforge/model";
import { evaluateRun } from "@irforge/eval";
import { createLoss } from "@irforge/losses";
import { DEFAULT_DIR } from "../default/mod.ts";
import { parseConfig } from "../config/parse.ts";
import { train } from "../loop.ts";
import {
  attentionDocumentScores,
  blockRankCompactPrompt,
  blockrankTask,
  blockRankTokenBatch,
  decodedRun,
  heldOutQueries,
  parsePredictedIndex,
  readBlockRankData,
  singlePositiveExamples,
} from "./blockrank.ts";

const haveDl19 = hasShared("data", "trec-dl19", "retrieve_results_dl19.json");

function configText(dir: string, extra: string[] = []): string {
  const dl19 = (file: string) => sharedPath("data", "trec-dl19", file);
  return [
    "recipe: blockrank",
    "model:",
    `  model_name_or_path: random-init:${DEFAULT_DIR}/tiny-llama`,
    "  use_blockrank: true",
    "  use_lora: false",
    "data:",
    `  data_path: ${dl19("retrieve_results_dl19.json")}`,
    `  qrels_path: ${dl19("qrels.dl19-passage.txt")}`,
    "  num_documents: 4",
    "  max_block_length: 32",
    "  train_test_split: 0.2",
    "  min_score: 2",
    "training:",
    `  output_dir: ${dir}`,
    "  max_steps: 6",
    "  per_device_train_batch_size: 2",
    "  learning_rate: 0.01",
    "  use_aux_loss: true",
    "  aux_loss_weight: 0.5",
    "  logging_steps: 3",
    "  eval_strategy: steps",
    "  eval_steps: 6",
    "  save_strategy: steps",
    "  save_steps: 6",
    ...extra,
  ].join("\n");
}

function withSets(text: string, sets: string[]): ReturnType<typeof parseConfig> {
  return parseConfig(text, "test.yaml", sets);
}

gpuTest("attention scoring matches the blockrank_aux loss it is trained with", async () => {
  await getDevice();
  const shape = [2, 3, 2, 16] as const;
  const [B, H, R, T] = shape;
  let seed = 5;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const scores = Float64Array.from({ length: B * H * R * T }, () => 4 * random() - 2);
  for (let i = 0; i < scores.length; i += 7) scores[i] = -Infinity; // masked entries
  const spans: [number, number][][] = [[[2, 5], [5, 9], [9, 13]], [[1, 4], [6, 10]]];
  const positives = [[1], [0]];
  const docScores = attentionDocumentScores(scores, shape, spans);
  for (const row of docScores) {
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12); // probability mass
  }
  const temperature = 0.05;
  let expected = 0;
  docScores.forEach((row, b) => {
    const logits = row.map((s) => s / temperature);
    const lse = (xs: number[]) => {
      const max = Math.max(...xs);
      return max + Math.log(xs.reduce((a, x) => a + Math.exp(x - max), 0));
    };
    expected += (lse(logits) - lse(positives[b]!.map((p) => logits[p]!))) / B;
  });
  const { loss } = await createLoss("blockrank_aux", { temperature }).compute({
    attentionScores: Tensor.fromArray(
      Float32Array.from(scores),
      [...shape],
    ),
    documentSpans: spans,
    positives,
  });
  const [value] = await loss.toArray();
  loss.dispose();
  assert.ok(Math.abs(value! - expected) <= 1e-4 * Math.abs(expected), `${value} vs ${expected}`);
});

Deno.test("plain causal token batch: every real token global, positions count real tokens", () => {
  const batch = collate([{
    inputIds: [0, 0, 5, 6, 0, 7, 8],
    labels: [-100, -100, -100, -100, -100, -100, 8],
    segment: [-1, -1, 0, 0, -1, 0, 0],
    block: [-1, -1, 0, 0, -1, 1, 1],
    kind: [-1, -1, TokenKind.prefix, TokenKind.prefix, -1, TokenKind.local, TokenKind.local],
    position: [0, 0, 0, 1, 0, 2, 3],
  }], { padId: 0, padToMultipleOf: 8 });
  const structured = blockRankTokenBatch(batch, true);
  assert.deepEqual([...structured.kind!], [-1, -1, 0, 0, -1, 1, 1, -1]);
  const plain = blockRankTokenBatch(batch, false);
  assert.deepEqual([...plain.positionIds!], [0, 0, 0, 1, 0, 2, 3, 0]);
  assert.deepEqual([...plain.kind!], [2, 2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual([...plain.block!], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...plain.segment!], [-1, -1, 0, 0, -1, 0, 0, -1]);
});

Deno.test("single-positive prompts and the held-out split", () => {
  const doc = (id: string) => ({ id, title: "", text: id });
  const example: RankingExample = {
    queryId: "q",
    query: "query",
    documents: ["a", "b", "c", "d"].map(doc),
    answerIds: ["b", "d"],
  };
  assert.deepEqual(
    singlePositiveExamples([example]).map((e) => [e.documents.map((d) => d.id), e.answerIds]),
    [[["b", "a", "c"], ["b"]], [["d", "a", "c"], ["d"]]],
  );
  const ids = Array.from({ length: 10 }, (_, i) => `q${i}`);
  const held = heldOutQueries(ids, 0.3, 42);
  assert.equal(held.size, 3);
  assert.deepEqual(heldOutQueries([...ids].reverse(), 0.3, 42), held); // order-independent
  assert.notDeepEqual(heldOutQueries(ids, 0.3, 43), held);
  assert.equal(heldOutQueries(ids, 0, 42).size, 0);
});

Deno.test({
  name: "DL19 candidates: held-out queries, one positive per prompt, graded eval qrels",
  ignore: !haveDl19,
  async fn() {
    const config = withSets(configText("/tmp/unused"), []);
    const data = await readBlockRankData(config);
    assert.equal(data.eval.length, 9); // round(43 · 0.2)
    const heldIds = new Set(data.eval.map((e) => e.queryId));
    assert.ok(data.train.every((e) => !heldIds.has(e.queryId)));
    for (const e of data.eval) assert.equal(e.documents.length, 100);
    // One query of DL19 has no candidate graded ≥ 2: reported, not silently dropped.
    assert.match(data.notes.join("\n"), /1 queries of .* have no candidate graded ≥ 2/);
    for (const e of data.train) {
      assert.equal(e.answerIds.length, 1);
      const grades = data.evalQrels!.get(e.queryId)!;
      assert.ok(grades.get(e.answerIds[0]!)! >= 2);
      for (const d of e.documents.slice(1)) assert.ok((grades.get(d.id) ?? 0) < 2);
    }
  },
});

async function readRecords(runPath: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(join(runPath, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l));
}

gpuTest(
  "blockrank: trains (LM + aux attention loss), evaluates held-out DL19, checkpoints",
  async () => {
    if (!haveDl19) return console.warn("skipped: shared DL19 data absent");
    await getDevice();
    const dir = await Deno.makeTempDir();
    const lines: string[] = [];
    try {
      const config = withSets(configText(join(dir, "run")), []);
      const task = await blockrankTask(config, { log: (l) => lines.push(l) });
      assert.equal(task.auxLayer, 1); // middle of 2 layers
      assert.match(lines.join("\n"), /using the compact prompt/);
      const result = await train({
        config,
        task,
        log: () => {},
        progress: false,
        handleSignals: false,
        evaluateFirst: true,
      });
      task.dispose();
      assert.equal(result.status, "finished", result.error?.stack);
      const records = (await readRecords(result.runPath)).filter((r) => "train/loss" in r);
      assert.deepEqual(records.map((r) => r.step), [3, 6]);
      for (const r of records) {
        for (const key of ["train/lm_loss", "train/aux_loss", "train/aux_accuracy"]) {
          assert.ok(Number.isFinite(r[key]), key);
        }
        // loss = lm + 0.5 · aux, averaged over the window
        const total = r["train/lm_loss"]! + 0.5 * r["train/aux_loss"]!;
        assert.ok(Math.abs(r["train/loss"]! - total) < 1e-4 * total);
      }
      assert.ok(
        records[1]!["train/loss"]! < records[0]!["train/loss"]!,
        `loss did not decrease: ${JSON.stringify(records)}`,
      );
      for (const step of [0, 6]) {
        const evalFile = JSON.parse(
          await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.json`)),
        );
        const m = evalFile.metrics;
        assert.ok(m["ndcg@10"] >= 0 && m["ndcg@10"] <= 1);
        // Reranking 4 documents cannot change the set of the first 4 … and not below rank 4.
        assert.equal(m["recall@100"], m["first_stage_recall@100"]);
        assert.equal(Object.keys(evalFile.per_query).length, 9); // the held-out queries
        const runText = await Deno.readTextFile(
          join(result.runPath, "eval", `step-${step}.run.txt`),
        );
        assert.equal(runText.trim().split("\n").length, 9 * 100);
      }
      const files = [...Deno.readDirSync(join(result.runPath, "checkpoints", "checkpoint-6"))]
        .map((e) => e.name).sort();
      assert.deepEqual(files, ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "blockrank + LoRA: 4 steps straight = 2, interrupt, resume 2; peft checkpoint",
  async () => {
    if (!haveDl19) return console.warn("skipped: shared DL19 data absent");
    await getDevice();
    const dir = await Deno.makeTempDir();
    const sets = (name: string) => [
      `training.output_dir=${join(dir, name)}`,
      "model.use_lora=true",
      "model.lora_r=4",
      "model.lora_dropout=0.1",
      "training.max_steps=4",
      "training.logging_steps=1",
      "training.eval_strategy=no",
      "training.save_strategy=steps",
      "training.save_steps=2",
    ];
    const quiet = { log: () => {}, progress: false, handleSignals: false } as const;
    try {
      const straight = withSets(configText(""), sets("straight"));
      const data = await readBlockRankData(straight);
      const a = await blockrankTask(straight, { data, log: () => {} });
      const full = await train({ config: straight, task: a, ...quiet });
      a.dispose();
      assert.equal(full.status, "finished", full.error?.stack);
      const split = withSets(configText(""), sets("split"));
      const b = await blockrankTask(split, { data, log: () => {} });
      const half = await train({ config: split, task: b, ...quiet, interruptAfterStep: 2 });
      b.dispose();
      assert.equal(half.status, "interrupted");
      const c = await blockrankTask(split, { data, log: () => {} });
      const rest = await train({ config: split, task: c, ...quiet, resume: half.runPath });
      c.dispose();
      assert.equal(rest.status, "finished", rest.error?.stack);
      const losses = async (path: string) =>
        (await readRecords(path)).filter((r) => "train/loss" in r).map((r) => [
          r["train/loss"],
          r["train/aux_loss"],
        ]);
      const expected = await losses(full.runPath);
      assert.equal(expected.length, 4);
      assert.deepEqual(await losses(half.runPath), expected);
      const files = [...Deno.readDirSync(join(half.runPath, "checkpoints", "checkpoint-4"))]
        .map((e) => e.name).sort();
      assert.deepEqual(files, [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("decoding evaluation: BlockRank's parse_predicted_id and the decoded run", () => {
  assert.equal(parsePredictedIndex("3, 17]</s>"), 3);
  assert.equal(parsePredictedIndex(" ID: 12 | the rest 4"), 12);
  assert.equal(parsePredictedIndex("doc3 is best"), null); // no standalone number
  assert.equal(parsePredictedIndex("none"), null);
  const documents = ["a", "b", "c", "d"].map((id) => ({ id, title: "", text: "" }));
  const order = (run: { docid: string; score: number }[]) =>
    [...run].sort((x, y) => y.score - x.score).map((r) => r.docid);
  assert.deepEqual(order(decodedRun(documents, 2)), ["c", "a", "b", "d"]);
  assert.deepEqual(order(decodedRun(documents, null)), ["a", "b", "c", "d"]);
});

gpuTest(
  "blockrank_eval both: attention accuracy from the scores; decode metrics from greedy answers",
  async () => {
    if (!haveDl19) return console.warn("skipped: shared DL19 data absent");
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const config = withSets(configText(join(dir, "run")), [
        "training.blockrank_eval=both",
        "training.generation_max_length=3",
        "data.max_eval_samples=3",
      ]);
      const lines: string[] = [];
      const task = await blockrankTask(config, { log: (l) => lines.push(l) });
      const data = await readBlockRankData(config);
      assert.equal(data.eval.length, 3);
      assert.match(lines.join("\n"), /evaluating on 3 of 9 held-out queries/);
      // Make greedy answers valid document ids: the (tied) output rows of "2" and "3" become
      // ±v with a large v, so one of them wins every argmax.
      const { model, tokenizer } = task.loaded;
      const two = tokenizer.encode("2")[0]!, three = tokenizer.encode("3")[0]!;
      const table = model.params.get("model.embed_tokens.weight")!;
      const values = (await table.toArray()) as Float32Array;
      const width = table.shape[1]!;
      for (let j = 0; j < width; j++) {
        const v = 40 * Math.sin(7.1 * j + 1);
        values[two * width + j] = v;
        values[three * width + j] = -v;
      }
      model.params.set(
        "model.embed_tokens.weight",
        Tensor.fromArray(values, table.shape, "f32").keep(),
      );
      table.dispose();
      const outcome = await task.evaluate!();
      const m = outcome.metrics;
      // Independent recomputation: top attention document, and greedy decoding of each prompt.
      const scores = await task.scoreExamples(data.eval);
      const isRelevant = (e: RankingExample, i: number | null) =>
        i !== null && e.answerIds.includes(e.documents[i]!.id);
      const attentionTop = scores.map((row) => row.indexOf(Math.max(...row)));
      assert.equal(
        m.accuracy,
        data.eval.filter((e, q) => isRelevant(e, attentionTop[q]!)).length / 3,
      );
      const predicted: (number | null)[] = [];
      for (const e of data.eval) {
        const documents = e.documents.slice(0, 4);
        const item = layoutBlockRank(tokenizer, e, documents, {
          numDocuments: 4,
          maxBlockLength: 32,
          seed: config.data.dataset_seed,
          mode: "eval",
          prompt: blockRankCompactPrompt,
        });
        const prompt = item.inputIds.filter((_, i) => item.segment[i]! >= 0);
        const out = await generate(model, prompt, {
          maxNewTokens: 3,
          stopTokens: [tokenizer.eosId!],
        });
        const index = parsePredictedIndex(tokenizer.decode!(out));
        predicted.push(index !== null && index < 4 ? index : null);
      }
      assert.ok(predicted.every((p) => p === 2 || p === 3), JSON.stringify(predicted));
      assert.deepEqual(await task.decodeExamples(data.eval), predicted);
      assert.equal(
        m.decode_accuracy,
        data.eval.filter((e, q) => isRelevant(e, predicted[q]!)).length / 3,
      );
      assert.equal(m.decode_invalid_rate, predicted.filter((p) => p === null).length / 3);
      const decodedEval = evaluateRun(
        data.evalQrels!,
        new Map(data.eval.map((e, q) => [e.queryId, decodedRun(e.documents, predicted[q]!)])),
        { measures: ["ndcg_cut.10"] },
      );
      assert.ok(
        Math.abs(m["decode_ndcg@10"]! - decodedEval.summary.get("ndcg_cut_10")!) < 1e-12,
        `${m["decode_ndcg@10"]} vs ${decodedEval.summary.get("ndcg_cut_10")}`,
      );
      for (const qid of data.eval.map((e) => e.queryId)) {
        assert.ok(Number.isFinite(outcome.perQuery![qid]!["decode_ndcg@10"]), qid);
      }
      task.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
