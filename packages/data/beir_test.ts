import assert from "node:assert/strict";
import { join } from "node:path";
import { readBeir, readBeirCorpus, readBeirQrels, readBeirQueries, writeBeir } from "./beir.ts";
import { InputError, SkipLog } from "./input_error.ts";
import { readJsonl } from "./jsonl.ts";
import { sharedPathOrSkip } from "./shared_data.ts";

async function withFile(name: string, text: string, body: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  try {
    await body(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function isInputError(start: string) {
  return (e: unknown) => e instanceof InputError && e.message.includes(start);
}

Deno.test("readJsonl streams values with line numbers and names a malformed line", async () => {
  await withFile("a.jsonl", '{"a":1}\r\n\n{"a":2}\n{"a":\n', async (path) => {
    const skip = new SkipLog(true);
    const seen = [];
    for await (const r of readJsonl(path, { skip })) seen.push([r.line, r.value]);
    assert.deepEqual(seen, [[1, { a: 1 }], [3, { a: 2 }]]);
    assert.equal(skip.problems.length, 1);
    assert.ok(skip.problems[0]!.message.startsWith(`${path}:4: malformed JSON`));
    await assert.rejects(async () => {
      for await (const _ of readJsonl(path)) { /* consume */ }
    }, isInputError(`${path}:4`));
  });
});

Deno.test("BEIR corpus: missing field, duplicated id, skip with count", async () => {
  const text = [
    '{"_id": "d1", "title": "T", "text": "one"}',
    '{"_id": 2, "text": "two"}',
    '{"title": "no id", "text": "x"}',
    '{"_id": "d1", "text": "again"}',
    '{"_id": "d4"}',
  ].join("\n");
  await withFile("corpus.jsonl", text, async (path) => {
    await assert.rejects(
      () => readBeirCorpus(path),
      isInputError(`${path}:3 (field "_id"): missing field`),
    );
    const skip = new SkipLog(true);
    const corpus = await readBeirCorpus(path, { skip });
    assert.deepEqual([...corpus.keys()], ["d1", "2"]);
    assert.equal(corpus.get("2")!.title, "");
    assert.equal(skip.problems.length, 3);
    assert.match(skip.problems[1]!.message, /:4 \(field "_id"\): duplicated document id "d1"/);
    assert.match(skip.problems[2]!.message, /:5 \(field "text"\): missing field/);
  });
});

Deno.test("BEIR queries: an empty query is an error naming line and field", async () => {
  await withFile("q.jsonl", '{"_id":"1","text":"a"}\n{"_id":"2","text":"  "}\n', async (path) => {
    await assert.rejects(
      () => readBeirQueries(path),
      isInputError(`${path}:2 (field "text"): is empty`),
    );
  });
});

Deno.test("BEIR qrels: header, CRLF, unknown document and bad score", async () => {
  const text = "query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n1\td9\t1\r\n2\td1\tx\r\n";
  await withFile("test.tsv", text, async (path) => {
    const skip = new SkipLog(true);
    const qrels = await readBeirQrels(path, { skip, corpus: new Set(["d1"]) });
    assert.deepEqual([...qrels.get("1")!], [["d1", 1]]);
    assert.equal(skip.problems.length, 2);
    assert.match(skip.problems[0]!.message, /:3 \(field "corpus-id"\): unknown document id "d9"/);
    assert.match(skip.problems[1]!.message, /:4 \(field "score"\)/);
  });
});

Deno.test("writeBeir round-trips through readBeir", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const counts = await writeBeir(dir, {
      corpus: new Map([["a", { id: "a", title: "t", text: "x\ty" }], ["b", {
        id: "b",
        title: "",
        text: "z",
      }]]),
      queries: new Map([["q", "what"]]),
      qrels: new Map([["q", new Map([["b", 2]])]]),
    });
    assert.deepEqual(counts, { documents: 2, queries: 1, qrels: 1, judgedQueries: 1 });
    const back = await readBeir(dir, "test");
    assert.equal(back.corpus.get("a")!.text, "x\ty");
    assert.equal(back.qrels.get("q")!.get("b"), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SciFact (BEIR) has the published counts and CRLF qrels", async () => {
  const dir = sharedPathOrSkip("SciFact counts", "data", "scifact");
  if (!dir) return;
  const train = await readBeir(dir, "train");
  assert.equal(train.corpus.size, 5183);
  assert.equal(train.queries.size, 1109);
  const first = train.corpus.values().next().value!;
  assert.equal(first.id, "4983");
  assert.ok(
    first.title.startsWith("Microstructural development of human newborn cerebral white matter"),
  );
  assert.equal(train.queries.get("0"), "0-dimensional biomaterials lack inductive properties.");
  const count = (q: Map<string, Map<string, number>>) =>
    [...q.values()].reduce((n, d) => n + d.size, 0);
  assert.equal(count(train.qrels), 919);
  assert.equal(train.qrels.size, 809);
  const test = await readBeirQrels(join(dir, "qrels", "test.tsv"), { corpus: train.corpus });
  assert.equal(count(test), 339);
  assert.equal(test.size, 300);
  assert.equal(test.get("1")!.get("31715818"), 1);
});
