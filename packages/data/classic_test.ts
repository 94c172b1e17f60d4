import assert from "node:assert/strict";
import { join } from "node:path";
import {
  emptyDocuments,
  parseBinaryQrels,
  parseCranfieldQrels,
  parseSmart,
  parseTrecDocuments,
  readCranfield,
  readNpl,
  readSmart,
  smartQueries,
} from "./classic.ts";
import { InputError, SkipLog } from "./input_error.ts";
import { sharedPathOrSkip } from "./shared_data.ts";
import { main as convert } from "./cli/convert.ts";
import { readBeir } from "./beir.ts";

const qrelCount = (q: Map<string, Map<string, number>>) =>
  [...q.values()].reduce((n, d) => n + d.size, 0);

Deno.test("parseSmart joins multi-line fields and normalises numeric ids", () => {
  const records = parseSmart(".I 007\n.T\ntitle\n.W\nline one\n  line two\n.I 8\n.W\nx\n", "f");
  assert.equal(records[0]!.id, "7");
  assert.equal(records[0]!.fields.get("T"), "title");
  assert.equal(records[0]!.fields.get("W"), "line one line two");
  assert.equal(records[1]!.line, 7);
  assert.throws(() => parseSmart("stray\n.I 1\n", "f"), /f:1: text before the first \.I/);
});

Deno.test("smartQueries: empty query is an error, a trailing empty .I 0 is an end marker", () => {
  const records = parseSmart(".I 1\n.W\nfirst\n.I 2\n.N\nnote only\n.I 0\n", "q");
  assert.throws(
    () => smartQueries(records, "q"),
    (e: unknown) => e instanceof InputError && e.message === 'q:4 (field ".W"): query "2" is empty',
  );
  const skip = new SkipLog(true);
  assert.deepEqual([...smartQueries(records, "q", { skip }).keys()], ["1"]);
  assert.equal(skip.problems.length, 1);
});

Deno.test("Cranfield qrels: -1 lines dropped and counted, grades mapped to 5 - grade", () => {
  const { qrels, dropped } = parseCranfieldQrels("1 184 2\n1 29 1\n1 486 -1\n2 5 4\n", "cq");
  assert.equal(dropped, 1);
  assert.deepEqual([...qrels.get("1")!], [["184", 3], ["29", 4]]);
  assert.equal(qrels.get("2")!.get("5"), 1);
  assert.throws(() => parseCranfieldQrels("1 2 7\n", "cq"), /cq:1 \(field "grade"\)/);
  assert.throws(
    () => parseCranfieldQrels("1 2 1\n", "cq", { corpus: new Set(["3"]) }),
    /cq:1 \(field "docid"\): unknown document id "2"/,
  );
});

Deno.test("binary qrels: duplicated pair names its line; TREC <DOC> needs DOCNO", () => {
  assert.throws(() => parseBinaryQrels("01 5 0 0\n1 5 0 0\n", "r"), /r:2 \(field "docid"\).*twice/);
  assert.throws(
    () => parseTrecDocuments("<DOC>\ntext\n</DOC>\n", "d"),
    /d:1 \(field "DOCNO"\): missing <DOCNO>/,
  );
});

Deno.test("Cranfield converts with the published counts", async () => {
  const dir = sharedPathOrSkip("Cranfield", "data", "cranfield");
  if (!dir) return;
  const c = await readCranfield({
    documents: join(dir, "cran.all.1400"),
    queries: join(dir, "cran.qry"),
    qrels: join(dir, "cranqrel"),
  });
  assert.equal(c.corpus.size, 1400);
  assert.equal(c.queries.size, 225);
  assert.equal(c.droppedQrelLines, 225);
  assert.equal(qrelCount(c.qrels), 1836 + 1 - 225); // 1,837 lines (last without newline)
  assert.equal(c.qrels.size, 225);
  const first = c.corpus.get("1")!;
  assert.equal(
    first.title,
    "experimental investigation of the aerodynamics of a wing in a slipstream .",
  );
  assert.ok(first.text.startsWith("experimental investigation of the aerodynamics of a wing"));
  assert.deepEqual(emptyDocuments(c.corpus), ["471", "995"]);
  // cran.qry's third query is ".I 004"; it becomes id "3" (position).
  assert.equal(
    c.queries.get("3"),
    "what problems of heat conduction in composite slabs have been solved so far .",
  );
  assert.equal(c.qrels.get("1")!.get("184"), 3); // grade 2 → 5 − 2
});

Deno.test("CISI, NPL and CACM convert with the published counts", async () => {
  const cisi = sharedPathOrSkip("CISI", "data", "cisi");
  const npl = sharedPathOrSkip("NPL", "data", "vaswani-npl");
  const cacm = sharedPathOrSkip("CACM", "data", "cacm");
  if (cisi) {
    const c = await readSmart({
      documents: join(cisi, "CISI.ALL"),
      queries: join(cisi, "CISI.QRY"),
      qrels: join(cisi, "CISI.REL"),
    });
    assert.deepEqual([c.corpus.size, c.queries.size, c.qrels.size, qrelCount(c.qrels)], [
      1460,
      112,
      76,
      3114,
    ]);
    assert.equal(c.corpus.get("1")!.title, "18 Editions of the Dewey Decimal Classifications");
    assert.ok(
      c.corpus.get("1")!.text.startsWith("The present study is a history of the DEWEY Decimal"),
    );
    assert.equal(c.qrels.get("1")!.get("28"), 1);
  }
  if (npl) {
    const c = await readNpl({
      documents: join(npl, "doc-text.trec"),
      queries: join(npl, "query-text.trec"),
      qrels: join(npl, "qrels"),
    });
    assert.deepEqual([c.corpus.size, c.queries.size, qrelCount(c.qrels)], [11429, 93, 2083]);
    assert.ok(
      c.corpus.get("1")!.text.startsWith("compact memories have flexible capacities a digital"),
    );
    assert.equal(
      c.queries.get("1"),
      "MEASUREMENT OF DIELECTRIC CONSTANT OF LIQUIDS BY THE USE OF MICROWAVE TECHNIQUES",
    );
  }
  if (cacm) {
    const c = await readSmart({
      documents: join(cacm, "cacm.all"),
      queries: join(cacm, "query.text"),
      qrels: join(cacm, "qrels.text"),
    });
    assert.deepEqual([c.corpus.size, c.queries.size, c.qrels.size, qrelCount(c.qrels)], [
      3204,
      64,
      52,
      796,
    ]);
    assert.equal(c.corpus.get("1")!.title, "Preliminary Report-International Algebraic Language");
    assert.ok(c.qrels.get("1")!.has("1410"));
  }
});

Deno.test("convert CLI writes BEIR layout that reads back", async () => {
  const dir = sharedPathOrSkip("convert CLI on CISI", "data", "cisi");
  if (!dir) return;
  const out = await Deno.makeTempDir();
  try {
    const log = console.log;
    const lines: string[] = [];
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    let code: number;
    try {
      code = await convert(["--format", "cisi", "--in", dir, "--out", out]);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    assert.ok(
      lines.some((l) => l.startsWith("wrote 1460 documents, 112 queries, 3114 qrels (76 judged")),
    );
    const back = await readBeir(out, "test");
    assert.equal(back.corpus.size, 1460);
    assert.equal(qrelCount(back.qrels), 3114);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("parseSmart: an unknown marker or a non-numeric .I id stops, or is counted under skip", () => {
  const text = ".I 1\n.T\nfirst\n.Z\nodd\n.W\nbody\n.I x7\n.W\nlost\n.I 2\n.W\nsecond\n";
  assert.throws(
    () => parseSmart(text, "f"),
    (e: unknown) =>
      e instanceof InputError &&
      e.message === 'f:4 (field ".Z"): unknown SMART marker (known: .I .T .A .B .W .X .N .K .C)',
  );
  assert.throws(
    () => parseSmart(".I 1\n.W\na\n.I x7\n.W\nb\n", "f"),
    /^InputError: f:4 \(field "\.I"\): id "x7" is not a number$/,
  );
  const skip = new SkipLog(true);
  const records = parseSmart(text, "f", skip);
  assert.deepEqual(records.map((r) => r.id), ["1", "2"]);
  assert.equal(records[0]!.fields.get("W"), "body");
  assert.equal(records[0]!.fields.has("Z"), false);
  assert.deepEqual(skip.problems.map((p) => p.location.line), [4, 8]);
});

/** Runs `deno task convert` in a subprocess. */
async function convertProcess(args: string[]) {
  const cli = new URL("./cli/convert.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("convert CLI: names the formats, refuses empty inputs and never overwrites", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bogus = await convertProcess(["--format", "bogus", "--in", dir, "--out", dir]);
    assert.equal(bogus.code, 2);
    assert.equal(
      bogus.stderr,
      'error: unknown --format "bogus"; the formats are cranfield, cisi, npl, smart\n',
    );
    const input = join(dir, "in");
    await Deno.mkdir(input);
    await Deno.writeTextFile(join(input, "CISI.ALL"), ".I 1\n.T\nA title\n.W\nsome text\n");
    await Deno.writeTextFile(join(input, "CISI.QRY"), ".I 1\n.W\ntitle words\n");
    await Deno.writeTextFile(join(input, "CISI.REL"), "1 1 0 0\n");
    const out = join(dir, "out");
    const args = ["--format", "cisi", "--in", input, "--out", out];
    const first = await convertProcess(args);
    assert.equal(first.code, 0, first.stderr);
    const written = await Deno.readTextFile(join(out, "corpus.jsonl"));
    await Deno.writeTextFile(join(input, "CISI.ALL"), ".I 1\n.W\nchanged\n");
    const again = await convertProcess(args);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: --out .*out already exists .*--force/);
    assert.equal(await Deno.readTextFile(join(out, "corpus.jsonl")), written);
    const into = await convertProcess(["--format", "cisi", "--in", input, "--out", dir, "--force"]);
    assert.equal(into.code, 1);
    assert.match(into.stderr, /contains --in/);
    const forced = await convertProcess([...args, "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(await Deno.readTextFile(join(out, "corpus.jsonl")), /changed/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["in", "out"]);
    await Deno.writeTextFile(join(input, "CISI.QRY"), "");
    const empty = await convertProcess([...args, "--force"]);
    assert.equal(empty.code, 1);
    assert.equal(
      empty.stderr,
      `error: ${join(input, "CISI.QRY")}: no queries found (is the file empty?)\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
