import assert from "node:assert/strict";
import { materializeQrels } from "./qrel_source.ts";
import { BinaryDataset } from "./binary_dataset.ts";
import { MultiLevelDataset } from "./multilevel_dataset.ts";
import { collateRetrieval } from "./retrieval_collator.ts";
import { HashWordTokenizer } from "./tokenizer.ts";
import type { Corpus } from "./beir.ts";

const corpus: Corpus = new Map(
  ["a", "b", "c", "d", "e", "f"].map((id) => [id, {
    id,
    title: "",
    text: `document ${id} with several words to cut`,
  }]),
);
const queries = new Map([["q", "first query"], ["r", "second query with more words"]]);
const qrels = new Map([
  ["q", new Map([["a", 2.7], ["b", 1], ["c", 0], ["d", 3.2]])],
  ["r", new Map([["e", 1.5], ["f", 2]])],
]);
const conflict = (irforge: string, trove: string) => (e: unknown) =>
  e instanceof TypeError && e.message.includes(`"${irforge}"`) &&
  e.message.includes(`Trove's "${trove}"`);

Deno.test("qrel source: Trove's min_score/max_score/score_transform equal irforge's names", () => {
  const base = { qrels, corpus, queries };
  const scores = (m: ReturnType<typeof materializeQrels>) =>
    [...m.groups].map(([q, g]) => [q, [...g].map(([d, s]) => [d, s.score])]);
  const irforge = materializeQrels([{ ...base, minScore: 1, maxScore: 3, scoreTransform: "ceil" }]);
  const trove = materializeQrels([{
    ...base,
    min_score: 1,
    max_score: 3,
    score_transform: "ceil",
  }]);
  assert.deepEqual(scores(irforge), [["q", [["a", 3], ["b", 1]]], ["r", [["e", 2], ["f", 2]]]]);
  assert.deepEqual(scores(trove), scores(irforge));
  assert.deepEqual(trove.queries, irforge.queries);
  const double = (s: number) => s * 2;
  assert.deepEqual(
    scores(materializeQrels([{ ...base, score_transform: double, scoreTransform: double }])),
    scores(materializeQrels([{ ...base, scoreTransform: double }])),
    "both names with the same value are accepted",
  );
  assert.throws(
    () => materializeQrels([{ ...base, minScore: 1, min_score: 2, name: "train.qrels" }]),
    (e: unknown) =>
      conflict("minScore", "min_score")(e) && (e as Error).message.includes('"train.qrels"'),
  );
});

Deno.test("BinaryDataset: Trove's group_size gives the same groups as groupSize", () => {
  const positives = materializeQrels([{ qrels, corpus, queries, minScore: 2 }]);
  const negatives = materializeQrels([{ qrels, corpus, queries, maxScore: 2 }]);
  const irforge = new BinaryDataset({ positives, negatives, randomCorpus: corpus, groupSize: 3 });
  const trove = new BinaryDataset({ positives, negatives, randomCorpus: corpus, group_size: 3 });
  assert.deepEqual(trove.options, irforge.options);
  for (const epoch of [0, 1, 2]) {
    for (let i = 0; i < irforge.length; i++) {
      const item = trove.get(i, epoch);
      assert.equal(item.passages.length, 3);
      assert.deepEqual(item, irforge.get(i, epoch));
    }
  }
  assert.throws(
    () => new BinaryDataset({ positives, groupSize: 3, group_size: 4 }),
    conflict("groupSize", "group_size"),
  );
});

Deno.test("MultiLevelDataset: Trove's group_size/passage_selection_strategy equal irforge's", () => {
  const source = materializeQrels([{ qrels, corpus, queries }]);
  const irforge = new MultiLevelDataset({
    source,
    groupSize: 3,
    passageSelectionStrategy: "random",
    seed: 5,
  });
  const trove = new MultiLevelDataset({
    source,
    group_size: 3,
    passage_selection_strategy: "random",
    seed: 5,
  });
  for (const epoch of [0, 1, 2, 3]) {
    for (let i = 0; i < irforge.length; i++) {
      assert.deepEqual(trove.get(i, epoch), irforge.get(i, epoch));
    }
  }
  // the strategy is really read: most_relevant would give q's top-3 by score in every epoch
  const mostRelevant = new MultiLevelDataset({ source, group_size: 3 });
  assert.deepEqual(mostRelevant.get(0).passages.map((d) => d.id), ["d", "a", "b"]);
  assert.ok(
    [0, 1, 2, 3, 4, 5].some((e) => trove.get(0, e).passages.map((d) => d.id).join() !== "d,a,b"),
  );
  assert.throws(
    () =>
      new MultiLevelDataset({
        source,
        group_size: 3,
        passageSelectionStrategy: "most_relevant",
        passage_selection_strategy: "random",
      }),
    conflict("passageSelectionStrategy", "passage_selection_strategy"),
  );
});

Deno.test("collateRetrieval: Trove's query_max_len/passage_max_len equal irforge's names", () => {
  const positives = materializeQrels([{ qrels, corpus, queries, minScore: 1 }]);
  const dataset = new BinaryDataset({ positives, randomCorpus: corpus, groupSize: 2 });
  const items = [dataset.get(0), dataset.get(1)];
  const tokenizer = new HashWordTokenizer();
  const irforge = collateRetrieval(items, tokenizer, {
    queryMaxLen: 4,
    passageMaxLen: 5,
    padToMultipleOf: 1,
  });
  const trove = collateRetrieval(items, tokenizer, {
    query_max_len: 4,
    passage_max_len: 5,
    padToMultipleOf: 1,
  });
  // the lengths cut: the second query has 5 words + BOS/EOS, passages 7 words + BOS/EOS
  assert.equal(irforge.queries.length, 4);
  assert.equal(irforge.passages.length, 5);
  assert.deepEqual(trove, irforge);
  assert.throws(
    () =>
      collateRetrieval(items, tokenizer, { queryMaxLen: 4, query_max_len: 8, passageMaxLen: 5 }),
    conflict("queryMaxLen", "query_max_len"),
  );
});
