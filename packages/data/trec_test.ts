import assert from "node:assert/strict";
import { formatQrels, formatRun, parseQrels, parseRun, readQrels, readRun } from "./trec.ts";
import { InputError, SkipLog } from "./input_error.ts";
import { sharedPathOrSkip } from "./shared_data.ts";

Deno.test("parseQrels reads grades, CRLF and names the line of a bad grade", () => {
  const qrels = parseQrels("1 0 d1 2\r\n1 0 d2 0\n\n2 Q0 d1 -1\n", "q.txt");
  assert.deepEqual([...qrels.get("1")!], [["d1", 2], ["d2", 0]]);
  assert.equal(qrels.get("2")!.get("d1"), -1);
  assert.throws(
    () => parseQrels("1 0 d1 2\n1 0 d2 x\n", "q.txt"),
    (e: unknown) => e instanceof InputError && e.message.startsWith('q.txt:2 (field "rel")'),
  );
  assert.throws(() => parseQrels("1 0 d1 2\n1 0 d1 1\n", "q.txt"), /q.txt:2.*judged twice/);
});

Deno.test("parseRun keeps file order, rejects duplicates, and can skip with a count", () => {
  const run = parseRun("q1 Q0 a 1 2.5 t\nq1 Q0 b 2 3 t\nq2 Q0 a 1 1 t\n", "r.txt");
  assert.equal(run.tag, "t");
  assert.deepEqual(run.queries.get("q1")!.map((e) => e.docid), ["a", "b"]);
  assert.throws(() => parseRun("q1 Q0 a 1 2.5 t\nq1 Q0 a 2 2 t\n", "r.txt"), /r.txt:2.*twice/);
  const skip = new SkipLog(true);
  const partial = parseRun("q1 Q0 a 1 2.5 t\nq1 Q0 b 2 nan? t\nq1 Q0 c\n", "r.txt", { skip });
  assert.equal(partial.queries.get("q1")!.length, 1);
  assert.equal(skip.problems.length, 2);
  assert.match(skip.summary(), /skipped 2 bad record/);
});

Deno.test("formatRun ranks by score and round-trips through parseRun", () => {
  const text = formatRun(
    new Map([["q", [{ docid: "x", score: 1 }, { docid: "y", score: 3 }]]]),
    "t",
  );
  const run = parseRun(text, "mem");
  assert.deepEqual(run.queries.get("q"), [{ docid: "y", rank: 1, score: 3 }, {
    docid: "x",
    rank: 2,
    score: 1,
  }]);
  const qrels = parseQrels("a 0 b 1\n", "m");
  assert.equal(formatQrels(qrels), "a 0 b 1\n");
});

Deno.test("TREC DL 2019 qrels and BM25 run have the published counts", async () => {
  const dir = sharedPathOrSkip("TREC DL 2019 counts", "data", "trec-dl19");
  if (!dir) return;
  const qrels = await readQrels(`${dir}/qrels.dl19-passage.txt`);
  let judged = 0;
  for (const docs of qrels.values()) judged += docs.size;
  assert.equal(qrels.size, 43);
  assert.equal(judged, 9260);
  const run = await readRun(`${dir}/trec_results_dl19.txt`);
  assert.equal(run.queries.size, 43);
  for (const entries of run.queries.values()) assert.equal(entries.length, 100);
});
