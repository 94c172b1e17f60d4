// The two CLIs end to end: trec_eval-identical output, one-sentence errors.
import assert from "node:assert/strict";
import { join } from "node:path";
import { hasShared, sharedPath } from "@irforge/data/shared-data";

const cliDir = new URL("./cli/", import.meta.url).pathname;

async function run(script: string, args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(cliDir, script), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

const dl19 = hasShared("data", "trec-dl19", "trec_eval");

Deno.test({
  name: "eval CLI prints trec_eval's -q -c -l 2 output byte for byte",
  ignore: !dl19,
  fn: async () => {
    const dir = sharedPath("data", "trec-dl19");
    const result = await run("eval.ts", [
      "-q",
      "-c",
      "-l",
      "2",
      "-m",
      "ndcg_cut.1,3,5,10,100",
      "-m",
      "recall.10,100,1000",
      "-m",
      "map",
      "-m",
      "P.10",
      "-m",
      "recip_rank",
      "-m",
      "Rprec",
      "--qrels",
      join(dir, "qrels.dl19-passage.txt"),
      "--run",
      join(dir, "trec_results_dl19.txt"),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      await Deno.readTextFile(join(dir, "trec_eval", "bm25.l2.perquery.txt")),
    );
  },
});

Deno.test("eval CLI: bad input gives one sentence naming file and line, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  const qrels = join(dir, "qrels.txt");
  const runFile = join(dir, "run.txt");
  await Deno.writeTextFile(qrels, "q1 0 d1 1\nq1 0 d2 x\n");
  await Deno.writeTextFile(runFile, "q1 Q0 d1 1 2.0 t\n");
  const bad = await run("eval.ts", [qrels, runFile]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, `eval: error: ${qrels}:2 (field "rel"): "x" is not an integer grade\n`);
  const missing = await run("eval.ts", ["--qrels", join(dir, "nope"), "--run", runFile]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^eval: error: qrels file ".*nope" does not exist\n$/);
  const measure = await run("eval.ts", ["-m", "ndcg", qrels, runFile]);
  assert.equal(measure.code, 1);
  assert.match(measure.stderr, /unknown measure "ndcg"/);
  await Deno.writeTextFile(qrels, "q1 0 d1 1\n");
  const ok = await run("eval.ts", ["-m", "P.1", "-m", "num_q", qrels, runFile]);
  assert.equal(ok.stdout, "num_q                 \tall\t1\nP_1                   \tall\t1.0000\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bm25 CLI: BEIR files in, TREC run out, metrics with --qrels", async () => {
  const dir = await Deno.makeTempDir();
  const corpus = join(dir, "corpus.jsonl");
  const queries = join(dir, "queries.jsonl");
  const qrels = join(dir, "test.tsv");
  const out = join(dir, "run.txt");
  await Deno.writeTextFile(
    corpus,
    [
      { _id: "d1", title: "Foxes", text: "the quick brown fox" },
      { _id: "d2", title: "", text: "lazy dogs sleep" },
      { _id: "d3", title: "Bears", text: "brown bears eat fish" },
    ].map((o) => JSON.stringify(o)).join("\n") + "\n",
  );
  await Deno.writeTextFile(
    queries,
    [{ _id: "q1", text: "brown fox" }, { _id: "q2", text: "sleepy dog" }]
      .map((o) => JSON.stringify(o)).join("\n") + "\n",
  );
  await Deno.writeTextFile(qrels, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n");
  const result = await run("bm25.ts", [
    "--corpus",
    corpus,
    "--queries",
    queries,
    "--qrels",
    qrels,
    "--out",
    out,
    "--k",
    "2",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = (await Deno.readTextFile(out)).trimEnd().split("\n").map((l) => l.split(" "));
  // q1: d1 has both terms, d3 only "brown"; q2: only d2 matches.
  assert.deepEqual(lines.map((f) => [f[0], f[2], f[3]]), [
    ["q1", "d1", "1"],
    ["q1", "d3", "2"],
    ["q2", "d2", "1"],
  ]);
  assert.match(result.stdout, /^ndcg_cut_10 +\tall\t1\.0000$/m);
  await Deno.writeTextFile(corpus, '{"_id": "d1", "text": "ok"}\n{"_id": "d2"\n');
  const bad = await run("bm25.ts", [
    "--corpus",
    corpus,
    "--queries",
    queries,
    "--out",
    out,
    "--force",
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`bm25: error: ${corpus}:2: malformed JSON`));
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bm25 CLI: never overwrites an input or an existing run; refuses an empty corpus", async () => {
  const dir = await Deno.makeTempDir();
  const corpus = join(dir, "corpus.jsonl");
  const queries = join(dir, "queries.jsonl");
  const out = join(dir, "run.txt");
  const corpusText = '{"_id": "d1", "text": "brown fox"}\n';
  await Deno.writeTextFile(corpus, corpusText);
  await Deno.writeTextFile(queries, '{"_id": "q1", "text": "fox"}\n');
  const args = ["--corpus", corpus, "--queries", queries];
  for (const extra of [[], ["--force"]]) {
    const clobber = await run("bm25.ts", [...args, "--out", corpus, ...extra]);
    assert.equal(clobber.code, 1);
    assert.equal(
      clobber.stderr,
      `bm25: error: --out ${corpus} is the same path as --corpus ${corpus}; ` +
        `choose another output so the input is not overwritten\n`,
    );
    assert.equal(await Deno.readTextFile(corpus), corpusText);
  }
  await Deno.writeTextFile(out, "precious\n");
  const exists = await run("bm25.ts", [...args, "--out", out]);
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /^bm25: error: --out .*run\.txt already exists .*--force/);
  assert.equal(await Deno.readTextFile(out), "precious\n");
  const forced = await run("bm25.ts", [...args, "--out", out, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(await Deno.readTextFile(out), /^q1 Q0 d1 1 /);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "corpus.jsonl",
    "queries.jsonl",
    "run.txt",
  ]);
  await Deno.writeTextFile(corpus, "");
  const empty = await run("bm25.ts", [...args, "--out", join(dir, "empty.txt")]);
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /^bm25: error: corpus .* has no documents/m);
  await assert.rejects(Deno.stat(join(dir, "empty.txt")), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});
