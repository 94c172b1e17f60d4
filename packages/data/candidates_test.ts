import assert from "node:assert/strict";
import { join } from "node:path";
import { readCandidates } from "./candidates.ts";
import { readRankingExamples } from "./blockrank_jsonl.ts";
import { readHotpotQa, supportingParagraphs } from "./hotpotqa.ts";
import { InputError, SkipLog } from "./input_error.ts";
import { readQrels } from "./trec.ts";
import { sharedPathOrSkip } from "./shared_data.ts";

async function temp(name: string, text: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  return path;
}

Deno.test("candidates: both query shapes, field paths in errors", async () => {
  const good = await temp(
    "c.json",
    JSON.stringify([
      { query: "q one", hits: [{ content: "a", qid: 7, docid: "d1", rank: 1, score: 2 }] },
      { query: { text: "q two", qid: "8" }, hits: [{ content: "b", docid: 5, rank: 1, score: 1 }] },
    ]),
  );
  const lists = await readCandidates(good);
  assert.deepEqual(lists.map((l) => [l.qid, l.query, l.hits[0]!.docid]), [["7", "q one", "d1"], [
    "8",
    "q two",
    "5",
  ]]);
  const bad = await temp(
    "c.json",
    JSON.stringify([{ query: "q", hits: [{ qid: 1, docid: "x", rank: 1, score: 1 }] }]),
  );
  await assert.rejects(
    () => readCandidates(bad),
    (e: unknown) =>
      e instanceof InputError &&
      e.message === `${bad} (field "[0].hits[0].content"): missing field`,
  );
  const empty = await temp(
    "c.jsonl",
    '{"query": "", "hits": []}\n{"query":"ok","hits":[{"qid":1,"docid":"a","content":"c"}]}\n',
  );
  const skip = new SkipLog(true);
  assert.equal((await readCandidates(empty, skip)).length, 1);
  assert.match(skip.problems[0]!.message, /c\.jsonl:1 \(field "query"\): empty query/);
});

Deno.test("TREC DL19 and NovelEval candidate files have the published shapes", async () => {
  const dl19 = sharedPathOrSkip(
    "TREC DL19 candidates",
    "data",
    "trec-dl19",
    "retrieve_results_dl19.json",
  );
  if (dl19) {
    const lists = await readCandidates(dl19);
    assert.equal(lists.length, 43);
    assert.ok(lists.every((l) => l.hits.length === 100));
    assert.equal(lists[0]!.qid, "264014");
    assert.equal(lists[0]!.query, "how long is life cycle of flea");
    assert.equal(lists[0]!.hits[0]!.docid, "5611210");
    assert.ok(lists[0]!.hits[0]!.content.startsWith("5. Cancel. A flea can live up to a year"));
  }
  const novel = sharedPathOrSkip("NovelEval", "data", "noveleval");
  if (novel) {
    const lists = await readCandidates(join(novel, "data.json"));
    assert.equal(lists.length, 21);
    assert.ok(lists.every((l) => l.hits.length === 20));
    assert.equal(lists[0]!.qid, "0");
    assert.equal(lists[0]!.hits[0]!.docid, "0-0");
    const qrels = await readQrels(join(novel, "qrels.txt"));
    assert.equal([...qrels.values()].reduce((n, d) => n + d.size, 0), 420);
    assert.equal(qrels.size, 21);
  }
});

Deno.test("HotpotQA: HF and original layouts parse to the same shape", async () => {
  const dev = sharedPathOrSkip(
    "HotpotQA dev 100",
    "data",
    "hotpotqa-dev-100",
    "hotpot_dev_distractor_v1.json",
  );
  if (dev) {
    const examples = await readHotpotQa(dev);
    assert.equal(examples.length, 100);
    const first = examples[0]!;
    assert.equal(first.id, "#0");
    assert.equal(first.question, "Were Scott Derrickson and Ed Wood of the same nationality?");
    assert.equal(first.answer, "yes");
    assert.equal(first.context.length, 10);
    assert.equal(first.context[1]!.title, "Scott Derrickson");
    assert.equal(
      first.context[1]!.sentences[0],
      "Scott Derrickson (born July 16, 1966) is an American director, screenwriter and producer.",
    );
    assert.deepEqual(first.supportingFacts, [{ title: "Scott Derrickson", sentence: 0 }, {
      title: "Ed Wood",
      sentence: 0,
    }]);
    assert.deepEqual(supportingParagraphs(first).map((p) => p.title), [
      "Scott Derrickson",
      "Ed Wood",
    ]);
  }
  const hard = sharedPathOrSkip("HotpotQA hard 500", "data", "hotpotqa-hard-500", "test.json");
  if (hard) {
    const examples = await readHotpotQa(hard);
    assert.equal(examples.length, 500);
    assert.equal(examples[0]!.id, "5a7166395542994082a3e814");
    assert.equal(examples[0]!.answer, "Kansas Song");
    assert.equal(examples[0]!.context[0]!.title, "History of the Kansas City metropolitan area");
    assert.equal(examples[0]!.supportingFacts.length, 3);
  }
  const bad = await temp(
    "h.jsonl",
    '{"question":"q","answer":"a","context":[["t", "not a list"]]}\n',
  );
  await assert.rejects(
    () => readHotpotQa(bad),
    /h\.jsonl:1 \(field "context\[0\]\[1\]"\): expected a JSON array/,
  );
});

Deno.test("BlockRank JSONL: dict and string documents, unknown answer id", async () => {
  const path = await temp(
    "b.jsonl",
    [
      JSON.stringify({
        query: "q",
        query_id: 3,
        documents: [{ doc_id: "a", title: "T", text: "x" }, { doc_id: "b", text: "y" }],
        answer_ids: ["b"],
      }),
      JSON.stringify({ query: "r", documents: ["p0", "p1"], answer_ids: [1] }),
      JSON.stringify({ query: "s", documents: ["p0"], answer_ids: [4] }),
    ].join("\n"),
  );
  const skip = new SkipLog(true);
  const examples = await readRankingExamples(path, skip);
  assert.equal(examples.length, 2);
  assert.equal(examples[0]!.queryId, "3");
  assert.deepEqual(examples[1]!.documents.map((d) => d.id), ["0", "1"]);
  assert.deepEqual(examples[1]!.answerIds, ["1"]);
  assert.equal(examples[1]!.queryId, "2");
  assert.match(
    skip.problems[0]!.message,
    /b\.jsonl:3 \(field "answer_ids\[0\]"\): unknown document id "4"/,
  );
});
