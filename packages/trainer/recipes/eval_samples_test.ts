import assert from "node:assert/strict";
import { evalCapNote, firstEvalQueries, firstEvalSamples } from "./eval_samples.ts";

Deno.test("max_eval_samples: first items / first queries in order; null keeps all", () => {
  assert.deepEqual(firstEvalSamples([5, 6, 7], 2), [5, 6]);
  assert.deepEqual(firstEvalSamples([5, 6, 7], 9), [5, 6, 7]);
  assert.deepEqual(firstEvalSamples([5, 6, 7], null), [5, 6, 7]);
  const qrels = new Map([
    ["q9", new Map([["d1", 1]])],
    ["q2", new Map([["d2", 2]])],
    ["q5", new Map([["d3", 0]])],
  ]);
  assert.deepEqual([...firstEvalQueries(qrels, 2).keys()], ["q9", "q2"]);
  assert.deepEqual(firstEvalQueries(qrels, 2).get("q2"), new Map([["d2", 2]]));
  assert.equal(firstEvalQueries(qrels, null), qrels);
  assert.equal(firstEvalQueries(qrels, 3), qrels);
  assert.equal(
    evalCapNote(2, 3, "queries"),
    "evaluating on 2 of 3 held-out queries (data.max_eval_samples)",
  );
  assert.equal(evalCapNote(3, 3, "queries"), null);
});
