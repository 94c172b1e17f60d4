import assert from "node:assert/strict";
import { join } from "node:path";
import { HttpError } from "./http_error.ts";
import {
  type MetricRecord,
  type MetricsChunk,
  parseCursor,
  parseMetricLine,
  readMetrics,
} from "./metrics.ts";
import { trainLine } from "./test_fixtures.ts";

async function tempFile(content: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "irforge-metrics-" });
  const path = join(dir, "metrics.jsonl");
  await Deno.writeTextFile(path, content);
  return path;
}

Deno.test("parseMetricLine accepts the layout's example lines", () => {
  const line = parseMetricLine(
    '{"step": 10, "time": "2026-11-23T10:00:10.000Z", "epoch": 0.1, "train/loss": 2.31, "train/learning_rate": 1e-4, "tokens_per_s": 5400}',
  );
  assert.equal(line.step, 10);
  assert.equal(line["train/loss"], 2.31);
  assert.equal(line["train/learning_rate"], 1e-4);
});

Deno.test("parseMetricLine rejects bad lines naming the field", () => {
  assert.throws(() => parseMetricLine("{oops"), /not JSON/);
  assert.throws(() => parseMetricLine("[1,2]"), /expected a JSON object, got an array/);
  assert.throws(() => parseMetricLine("3"), /expected a JSON object, got number/);
  assert.throws(
    () => parseMetricLine('{"loss": 1}'),
    /field "step": expected a non-negative integer, got nothing/,
  );
  assert.throws(() => parseMetricLine('{"step": 1.5}'), /field "step"/);
  assert.throws(() => parseMetricLine('{"step": -1}'), /field "step"/);
  assert.throws(() => parseMetricLine('{"step": 1, "time": 5}'), /field "time"/);
  assert.throws(
    () => parseMetricLine('{"step": 1, "train/loss": "2.3"}'),
    /field "train\/loss": expected a number or null/,
  );
  // null stands for a non-finite value the trainer could not write as JSON.
  assert.equal(parseMetricLine('{"step": 1, "train/loss": null}')["train/loss"], null);
});

Deno.test("parseCursor: empty, bytes:lines, bytes, and errors", () => {
  assert.deepEqual(parseCursor(undefined), { bytes: 0, lines: 0 });
  assert.deepEqual(parseCursor(""), { bytes: 0, lines: 0 });
  assert.deepEqual(parseCursor("120:3"), { bytes: 120, lines: 3 });
  assert.deepEqual(parseCursor("120"), { bytes: 120, lines: -1 });
  for (const bad of ["-1", "abc", "1:2:3", "0:4", "1e3", " 5"]) {
    assert.throws(() => parseCursor(bad), (e) => e instanceof HttpError && e.status === 400, bad);
  }
});

Deno.test("readMetrics reads valid lines, reports malformed ones with their line numbers", async () => {
  const content = trainLine(10) + "not json\n" + "\n" + trainLine(20) + '{"step": "x"}\r\n' +
    trainLine(30);
  const path = await tempFile(content);
  const chunk = await readMetrics(path, parseCursor(""));
  assert.deepEqual(chunk.metrics.map((m) => m.step), [10, 20, 30]);
  assert.deepEqual(chunk.malformed.map((m) => [m.line, m.text]), [[2, "not json"], [
    5,
    '{"step": "x"}',
  ]]);
  assert.match(chunk.malformed[1]!.error, /field "step"/);
  assert.equal(chunk.next, `${new TextEncoder().encode(content).length}:6`);
  assert.equal(chunk.pending, null);
  assert.equal(chunk.reset, false);
  assert.equal(chunk.more, false);
});

Deno.test("readMetrics: a partial last line is pending, then read once complete", async () => {
  const full = trainLine(10) + trainLine(20);
  const half = trainLine(30).slice(0, 25);
  const path = await tempFile(full + half);
  const first = await readMetrics(path, parseCursor(""));
  assert.deepEqual(first.metrics.map((m) => m.step), [10, 20]);
  assert.deepEqual(first.malformed, []);
  assert.deepEqual(first.pending, { line: 3, bytes: 25 });
  assert.equal(first.next, `${full.length}:2`);

  // Still partial: nothing new, still pending.
  const again = await readMetrics(path, parseCursor(first.next));
  assert.deepEqual(again.metrics, []);
  assert.deepEqual(again.pending, { line: 3, bytes: 25 });

  await Deno.writeTextFile(path, trainLine(30).slice(25) + trainLine(40), { append: true });
  const second = await readMetrics(path, parseCursor(first.next));
  assert.deepEqual(second.metrics.map((m) => m.step), [30, 40]);
  assert.deepEqual(second.malformed, []);
  assert.equal(second.pending, null);
  assert.equal(second.next, `${full.length + trainLine(30).length + trainLine(40).length}:4`);
});

Deno.test("readMetrics: when the run has ended, an unterminated last line is parsed", async () => {
  const path = await tempFile(trainLine(10) + '{"step": 20, "train/loss": 1.5}');
  const chunk = await readMetrics(path, parseCursor(""), { final: true });
  assert.deepEqual(chunk.metrics.map((m) => m.step), [10, 20]);
  assert.equal(chunk.pending, null);
  const broken = await tempFile(trainLine(10) + '{"step": 20, "train/lo');
  const bad = await readMetrics(broken, parseCursor(""), { final: true });
  assert.deepEqual(bad.malformed.map((m) => m.line), [2]);
});

Deno.test("readMetrics: reading in small pieces gives the same records as one read", async () => {
  let content = "";
  for (let step = 1; step <= 200; step++) {
    content += step % 37 === 0 ? `garbage ${step}\n` : trainLine(step);
  }
  const path = await tempFile(content);
  const whole = await readMetrics(path, parseCursor(""));
  const pieces: MetricRecord[] = [];
  const malformed: number[] = [];
  let cursor = "";
  let reads = 0;
  for (;;) {
    const chunk: MetricsChunk = await readMetrics(path, parseCursor(cursor), { maxBytes: 300 });
    pieces.push(...chunk.metrics);
    malformed.push(...chunk.malformed.map((m) => m.line));
    cursor = chunk.next;
    reads++;
    if (!chunk.more) break;
  }
  assert.ok(reads > 10, `expected many reads, got ${reads}`);
  assert.deepEqual(pieces, whole.metrics);
  assert.deepEqual(malformed, [37, 74, 111, 148, 185]);
  assert.deepEqual(whole.malformed.map((m) => m.line), malformed);
  assert.equal(cursor, whole.next);
});

Deno.test("readMetrics: a byte-only cursor recounts lines; a mid-line cursor is a 400", async () => {
  const content = trainLine(10) + "bad\n" + trainLine(20) + "worse\n";
  const path = await tempFile(content);
  const offset = trainLine(10).length + 4;
  const chunk = await readMetrics(path, parseCursor(String(offset)));
  assert.deepEqual(chunk.metrics.map((m) => m.step), [20]);
  assert.deepEqual(chunk.malformed.map((m) => m.line), [4]);
  await assert.rejects(
    () => readMetrics(path, parseCursor("5:0")),
    (e) => e instanceof HttpError && e.status === 400 && /not the start of a line/.test(e.message),
  );
});

Deno.test("readMetrics: a file shorter than the cursor restarts with reset", async () => {
  const path = await tempFile(trainLine(10) + trainLine(20));
  const chunk = await readMetrics(path, parseCursor("100000:50"));
  assert.equal(chunk.reset, true);
  assert.deepEqual(chunk.metrics.map((m) => m.step), [10, 20]);
});

Deno.test("readMetrics: a missing file reads as empty", async () => {
  const dir = await Deno.makeTempDir();
  const chunk = await readMetrics(join(dir, "metrics.jsonl"), parseCursor(""));
  assert.deepEqual(chunk, {
    metrics: [],
    malformed: [],
    next: "0:0",
    pending: null,
    reset: false,
    more: false,
  });
  assert.equal((await readMetrics(null, parseCursor(""))).next, "0:0");
});

Deno.test("readMetrics: long malformed lines are cut to 500 characters", async () => {
  const path = await tempFile("x".repeat(2000) + "\n");
  const chunk = await readMetrics(path, parseCursor(""));
  assert.equal(chunk.malformed[0]!.text.length, 501);
  assert.ok(chunk.malformed[0]!.text.endsWith("…"));
});
