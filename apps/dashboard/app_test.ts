import assert from "node:assert/strict";
import { join } from "node:path";
import { createApp } from "./app.ts";
import {
  distillRuns,
  makeRunsDir,
  metricsLine,
  runJson,
  sampleRun,
  trainLine,
  writeRuns,
} from "./test_fixtures.ts";

const SECRET = "TOP-SECRET-DO-NOT-SERVE";

/** A runs dir with a complete run, odd runs, and a secret file outside it. */
async function fixture() {
  const runs = await makeRunsDir([
    sampleRun("blockrank-dl19"),
    {
      name: "older",
      runJson: runJson("older", {
        status: "finished",
        started_at: "2026-11-20T09:00:00.000Z",
        best: null,
      }),
      metrics: trainLine(5),
    },
    { name: "no-run-json", metrics: "" },
    { name: "broken-run-json", runJson: "{nope" },
    { name: "bad-status", runJson: runJson("bad-status", { status: "exploded" }) },
  ]);
  const outside = await Deno.makeTempDir({ prefix: "irforge-outside-" });
  await Deno.writeTextFile(join(outside, "config.yaml"), `secret: ${SECRET}\n`);
  await Deno.writeTextFile(join(outside, "metrics.jsonl"), `{"step": 1, "${SECRET}": 1}\n`);
  await Deno.writeTextFile(join(outside, "run.json"), JSON.stringify(runJson(SECRET)));
  return { runs, outside, app: createApp(runs, { pollMs: 20 }) };
}

async function json(response: Response): Promise<Record<string, unknown>> {
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  return await response.json();
}

Deno.test("GET /api/runs lists runs newest first with their problems", async () => {
  const { app } = await fixture();
  const response = await app.request("/api/runs");
  assert.equal(response.status, 200);
  const { runs } = await json(response) as { runs: Record<string, unknown>[] };
  assert.deepEqual(runs.map((r) => r.name), [
    "blockrank-dl19",
    "older",
    "bad-status",
    "broken-run-json",
    "no-run-json",
  ]);
  const first = runs[0]!;
  assert.equal(first.recipe, "blockrank");
  assert.equal(first.status, "running");
  assert.equal(first.step, 120);
  assert.equal(first.total_steps, 500);
  assert.deepEqual(first.best, { metric: "eval/ndcg@10", value: 0.61, step: 100 });
  assert.equal(first.error, null);
  const byName = new Map(runs.map((r) => [r.name, r]));
  assert.equal(byName.get("no-run-json")!.error, "no-run-json/run.json: missing");
  assert.match(
    String(byName.get("broken-run-json")!.error),
    /^broken-run-json\/run\.json: not valid JSON/,
  );
  assert.match(
    String(byName.get("bad-status")!.error),
    /^bad-status\/run\.json \(field "status"\): expected one of running, finished, failed, interrupted/,
  );
});

Deno.test("GET /api/runs on a missing runs directory is an empty list", async () => {
  const app = createApp(join(await Deno.makeTempDir(), "not-there"));
  assert.deepEqual(await json(await app.request("/api/runs")), { runs: [] });
  const page = await app.request("/");
  assert.equal(page.status, 200);
  assert.match(await page.text(), /No runs in/);
});

Deno.test("GET /api/runs/:name returns the summary and which files exist", async () => {
  const { app, runs } = await fixture();
  const body = await json(await app.request("/api/runs/blockrank-dl19"));
  assert.equal(body.name, "blockrank-dl19");
  const metricsBytes = (await Deno.stat(join(runs, "blockrank-dl19", "metrics.jsonl"))).size;
  assert.deepEqual(body.files, { config: true, metrics: true, metrics_bytes: metricsBytes });
  const bare = await json(await app.request("/api/runs/no-run-json"));
  assert.deepEqual(bare.files, { config: false, metrics: true, metrics_bytes: 0 });
});

Deno.test("unknown runs are 404, bad names 400, in the API and on pages", async () => {
  const { app } = await fixture();
  for (const path of ["", "/metrics", "/config", "/checkpoints", "/eval", "/eval/50", "/events"]) {
    const missing = await app.request(`/api/runs/nope${path}`);
    assert.equal(missing.status, 404, path);
    assert.deepEqual(await json(missing), { error: 'run "nope" not found' });
    const bad = await app.request(`/api/runs/-bad${path}`);
    assert.equal(bad.status, 400, path);
    assert.match(String((await json(bad)).error), /^invalid run name "-bad"/);
  }
  const page = await app.request("/runs/nope");
  assert.equal(page.status, 404);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await page.text(), /run &quot;nope&quot; not found/);
  assert.equal((await app.request("/runs/a..b")).status, 400);
  assert.equal((await app.request("/api/nothing")).status, 404);
  assert.equal((await app.request("/nothing")).status, 404);
});

Deno.test("GET /api/runs/:name/metrics pages through metrics.jsonl with a cursor", async () => {
  const { app, runs } = await fixture();
  const path = join(runs, "blockrank-dl19", "metrics.jsonl");
  const all = await json(await app.request("/api/runs/blockrank-dl19/metrics"));
  const metrics = all.metrics as Record<string, number>[];
  // 12 training lines (steps 10..120) and 2 eval lines (steps 50, 100).
  assert.equal(metrics.length, 14);
  assert.deepEqual(
    metrics.filter((m) => "eval/ndcg@10" in m).map((m) => [m.step, m["eval/ndcg@10"]]),
    [[50, 0.55], [100, 0.6]],
  );
  assert.equal(metrics[0]!["train/loss"], 3 / (1 + 10 / 50));
  assert.deepEqual(all.malformed, []);
  const size = (await Deno.stat(path)).size;
  assert.equal(all.next, `${size}:14`);

  await Deno.writeTextFile(path, trainLine(130) + "oops\n" + trainLine(140).slice(0, 10), {
    append: true,
  });
  const more = await json(await app.request(`/api/runs/blockrank-dl19/metrics?since=${all.next}`));
  assert.deepEqual((more.metrics as { step: number }[]).map((m) => m.step), [130]);
  assert.equal((more.malformed as { line: number }[])[0]!.line, 16);
  assert.deepEqual(more.pending, { line: 17, bytes: 10 });

  const bad = await app.request("/api/runs/blockrank-dl19/metrics?since=banana");
  assert.equal(bad.status, 400);
  assert.match(String((await json(bad)).error), /invalid cursor "banana"/);
  const midLine = await app.request("/api/runs/blockrank-dl19/metrics?since=7:0");
  assert.equal(midLine.status, 400);
});

Deno.test("GET /api/runs/:name/metrics: a finished run's unterminated last line counts", async () => {
  const { app, runs } = await fixture();
  await Deno.writeTextFile(join(runs, "older", "metrics.jsonl"), '{"step": 6, "train/loss": 1}', {
    append: true,
  });
  const body = await json(await app.request("/api/runs/older/metrics"));
  assert.deepEqual((body.metrics as { step: number }[]).map((m) => m.step), [5, 6]);
  assert.equal(body.pending, null);
});

Deno.test("GET /api/runs/:name/config returns the text and the parsed YAML", async () => {
  const { app } = await fixture();
  const body = await json(await app.request("/api/runs/blockrank-dl19/config"));
  assert.match(String(body.text), /^recipe: blockrank\n/);
  assert.deepEqual(body.parsed, {
    recipe: "blockrank",
    model: { name: "mistral-tiny", lora: { r: 8 } },
    learning_rate: 0.0001,
  });
  assert.equal(body.error, null);
  const missing = await app.request("/api/runs/older/config");
  assert.equal(missing.status, 404);
  assert.deepEqual(await json(missing), { error: "older/config.yaml not found" });
});

Deno.test("GET /api/runs/:name/config reports YAML errors without failing", async () => {
  const { app, runs } = await fixture();
  await Deno.writeTextFile(join(runs, "older", "config.yaml"), "a: [1, 2\nb: }\n");
  const body = await json(await app.request("/api/runs/older/config"));
  assert.equal(body.parsed, null);
  assert.match(String(body.error), /^older\/config\.yaml: /);
});

Deno.test("GET /api/runs/:name/checkpoints lists steps, sizes and files", async () => {
  const { app } = await fixture();
  const { checkpoints } = await json(await app.request("/api/runs/blockrank-dl19/checkpoints")) as {
    checkpoints: Record<string, unknown>[];
  };
  assert.deepEqual(checkpoints.map((c) => [c.name, c.step]), [["checkpoint-50", 50], [
    "checkpoint-100",
    100,
  ]]);
  const stateBytes = JSON.stringify({ step: 50, epoch: 0.5, best: null }).length;
  assert.equal(checkpoints[0]!.bytes, 3000 + 8 + 6000 + stateBytes);
  assert.deepEqual(checkpoints[0]!.files, [
    { name: "adapter_config.json", bytes: 8 },
    { name: "adapter_model.safetensors", bytes: 3000 },
    { name: "optimizer.safetensors", bytes: 6000 },
    { name: "trainer_state.json", bytes: stateBytes },
  ]);
  assert.deepEqual(checkpoints[0]!.trainer_state, { step: 50, epoch: 0.5, best: null });
  assert.deepEqual(await json(await app.request("/api/runs/older/checkpoints")), {
    checkpoints: [],
  });
});

Deno.test("GET /api/runs/:name/eval lists steps; /eval/:step adds per-query metrics", async () => {
  const { app, runs } = await fixture();
  await writeRuns(runs, [{
    name: "blockrank-dl19",
    evals: [
      { step: 70, content: { step: 71, metrics: {} } },
      { step: 80, content: { step: 80, metrics: { "ndcg@10": "high" } } },
      { step: 90, content: "{broken" },
    ],
  }]);
  const body = await json(await app.request("/api/runs/blockrank-dl19/eval")) as {
    evaluations: Record<string, unknown>[];
    errors: { file: string; error: string }[];
  };
  assert.deepEqual(
    body.evaluations.map((e) => [e.step, e.metrics, e.queries, e.has_run, "per_query" in e]),
    [
      [50, { "ndcg@10": 0.55, "mrr@10": 0.65 }, 2, true, false],
      [100, { "ndcg@10": 0.61, "mrr@10": 0.7 }, 2, false, false],
    ],
  );
  assert.deepEqual(body.errors.map((e) => e.file), [
    "step-70.json",
    "step-80.json",
    "step-90.json",
  ]);
  assert.match(
    body.errors[0]!.error,
    /step-70\.json \(field "step"\): is 71 but the file name says 70/,
  );
  assert.match(
    body.errors[1]!.error,
    /step-80\.json \(field "metrics\.ndcg@10"\): expected a number/,
  );
  assert.match(body.errors[2]!.error, /step-90\.json: not valid JSON/);

  const one = await json(await app.request("/api/runs/blockrank-dl19/eval/50"));
  assert.deepEqual(one.per_query, {
    q1: { "ndcg@10": 0.5, "mrr@10": 1 },
    q2: { "ndcg@10": 0.6, "mrr@10": 0.3 },
  });
  assert.equal((await app.request("/api/runs/blockrank-dl19/eval/60")).status, 404);
  assert.equal((await app.request("/api/runs/blockrank-dl19/eval/x")).status, 400);
  const broken = await app.request("/api/runs/blockrank-dl19/eval/90");
  assert.equal(broken.status, 422);
  assert.match(String((await json(broken)).error), /step-90\.json: not valid JSON/);
});

Deno.test("traversal attempts never leave the runs directory", async () => {
  const { app, runs, outside } = await fixture();
  // Symlinks pointing outside: a whole run, and single files inside a real run.
  await Deno.symlink(outside, join(runs, "escape"));
  await writeRuns(runs, [{ name: "linked", runJson: runJson("linked") }]);
  await Deno.symlink(join(outside, "config.yaml"), join(runs, "linked", "config.yaml"));
  await Deno.symlink(join(outside, "metrics.jsonl"), join(runs, "linked", "metrics.jsonl"));
  await Deno.mkdir(join(runs, "linked", "checkpoints"));
  await Deno.symlink(outside, join(runs, "linked", "checkpoints", "checkpoint-1"));
  await Deno.mkdir(join(runs, "linked", "eval"));
  await Deno.symlink(join(outside, "run.json"), join(runs, "linked", "eval", "step-1.json"));

  const cases: [string, number][] = [
    ["/api/runs/..%2F..%2Fetc%2Fpasswd", 400],
    ["/api/runs/..%2f" + "blockrank-dl19/config", 400],
    ["/api/runs/%2e%2e%2fescape/config", 400],
    ["/api/runs/%2Fetc%2Fpasswd/config", 400],
    ["/api/runs/%5C..%5Cetc/config", 400],
    ["/api/runs/blockrank-dl19%00/config", 400],
    ["/api/runs/blockrank-dl19/eval/..%2F..%2Fescape%2Frun", 400],
    ["/api/runs/blockrank-dl19/eval/%2e%2e%2f%2e%2e%2fescape", 400],
    ["/static/..%2Fapp.ts", 400],
    ["/static/app.ts", 404],
    ["/runs/..%2Fescape", 400],
    ["/api/runs/escape", 403],
    ["/api/runs/escape/config", 403],
    ["/api/runs/escape/metrics", 403],
    ["/api/runs/escape/events", 403],
    ["/runs/escape", 403],
    ["/api/runs/linked/config", 403],
    ["/api/runs/linked/metrics", 403],
    ["/api/runs/linked/eval/1", 403],
  ];
  for (const [path, status] of cases) {
    const response = await app.request(path);
    const text = await response.text();
    assert.equal(response.status, status, path);
    assert.ok(!text.includes(SECRET), `${path} leaked the secret`);
  }
  // URLs whose dot segments the URL parser resolves never reach another file either.
  for (
    const path of [
      "/api/runs/%2e%2e/config",
      "/api/runs/.%2e",
      "/api/runs/../escape",
      "/runs/./../../etc",
    ]
  ) {
    const response = await app.request(path);
    assert.ok([400, 404].includes(response.status), `${path}: ${response.status}`);
    assert.ok(!(await response.text()).includes(SECRET));
  }
  // Listings show the outside links as errors instead of following them.
  const { runs: list } = await json(await app.request("/api/runs")) as {
    runs: Record<string, unknown>[];
  };
  assert.equal(list.find((r) => r.name === "escape")!.error, "points outside the runs directory");
  assert.ok(!JSON.stringify(list).includes(SECRET));
  const checkpoints = await app.request("/api/runs/linked/checkpoints");
  assert.equal(checkpoints.status, 200);
  const cpText = await checkpoints.text();
  assert.match(cpText, /points outside the runs directory/);
  assert.ok(!cpText.includes("run.json"), "files of the outside directory were listed");
  const evals = await json(await app.request("/api/runs/linked/eval")) as {
    errors: { error: string }[];
  };
  assert.match(evals.errors[0]!.error, /points outside the runs directory/);
  // The run page still renders, reporting the outside config link.
  const page = await app.request("/runs/linked");
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /linked\/config\.yaml points outside the runs directory/);
  assert.ok(!html.includes(SECRET));
});

Deno.test("HTML escapes run names, run.json fields, config text and metric names", async () => {
  const attack = "<script>alert(1)</script>";
  const runs = await makeRunsDir([
    {
      name: "xss",
      runJson: runJson("xss", {
        recipe: `<img src=x onerror=alert(1)>`,
        best: { metric: attack, value: 1, step: 1 },
      }),
      config: `name: "</pre>${attack}"\n`,
      evals: [{ step: 1, content: { step: 1, metrics: { [attack]: 0.5 }, per_query: {} } }],
    },
    { name: "<script>", runJson: runJson("<script>") },
    { name: "ok", runJson: runJson("ok", { recipe: `"><svg onload=alert(1)>` }) },
  ]);
  const app = createApp(runs);
  const list = await (await app.request("/")).text();
  const page = await (await app.request("/runs/xss")).text();
  const compare =
    await (await app.request(`/compare?runs=ok&metric=${encodeURIComponent(`"><script>x`)}`))
      .text();
  for (const html of [list, page, compare]) {
    assert.ok(!html.includes("<script>alert"), "raw script tag in the page");
    assert.ok(!html.includes("<img src=x"), "raw img tag in the page");
    assert.ok(!html.includes("<svg onload"), "raw svg tag in the page");
    assert.ok(!html.includes(`"><script>x`), "attribute breakout");
  }
  assert.match(list, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(
    list,
    /<td>&lt;script&gt;<div class="error">invalid run name: cannot be opened<\/div><\/td>/,
  );
  assert.match(page, /&lt;\/pre&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(page, /<th class="num">&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/th>/);
  assert.match(compare, /&quot;&gt;&lt;script&gt;x/);
  // The run with a tag for a name is listed but cannot be opened.
  assert.equal((await app.request(`/runs/${encodeURIComponent("<script>")}`)).status, 400);
  // Pages forbid inline scripts, so even a missed escape could not run one.
  const headers = (await app.request("/")).headers;
  assert.match(headers.get("content-security-policy") ?? "", /script-src 'self'/);
  assert.equal(headers.get("x-content-type-options"), "nosniff");
});

Deno.test("run page shows summary, evals, checkpoints and escaped config", async () => {
  const { app } = await fixture();
  const response = await app.request("/runs/blockrank-dl19");
  assert.equal(response.status, 200);
  const html = await response.text();
  assert.match(html, /<body data-run="blockrank-dl19">/);
  assert.match(html, /<script type="module" src="\/static\/run\.js"><\/script>/);
  assert.match(html, /<span class="status status-running">running<\/span>/);
  assert.match(html, /<dd id="run-steps">120 \/ 500<\/dd>/);
  assert.match(html, /eval\/ndcg@10 = 0\.61 @ 100/);
  assert.match(
    html,
    /<th class="num">Step<\/th><th class="num">mrr@10<\/th><th class="num">ndcg@10<\/th>/,
  );
  assert.match(html, /<button type="button" class="per-query" data-step="50">/);
  assert.match(html, /checkpoints\/checkpoint-100/);
  // checkpoint-50: 3000 + 8 + 6000 + 35 bytes = 9043 bytes = 8.83 KiB.
  assert.match(html, /<td class="num">50<\/td>\n<td class="num">8\.83 KiB<\/td>/);
  assert.match(html, /<pre class="config">recipe: blockrank\nmodel:/);
  const list = await (await app.request("/")).text();
  assert.match(list, /<a href="\/runs\/blockrank-dl19">blockrank-dl19<\/a>/);
  assert.match(list, /<td class="num">120 \/ 500<\/td>/);
  assert.match(list, /2026-11-23 10:00:00/);
});

Deno.test("compare page lists openable runs and keeps the selection", async () => {
  const { app } = await fixture();
  const html = await (await app.request("/compare?runs=older&metric=train/loss")).text();
  assert.match(html, /<input type="checkbox" name="runs" value="older" checked>/);
  assert.match(html, /<input type="checkbox" name="runs" value="blockrank-dl19">/);
  assert.match(html, /<option value="train\/loss" selected>train\/loss<\/option>/);
  assert.match(html, /data-metric="train\/loss"/);
});

Deno.test("static assets are served from a fixed list", async () => {
  const { app } = await fixture();
  const assets: [string, RegExp][] = [
    ["chart.js", /text\/javascript/],
    ["run.js", /text\/javascript/],
    ["compare.js", /text\/javascript/],
    ["style.css", /text\/css/],
  ];
  for (const [name, type] of assets) {
    const response = await app.request(`/static/${name}`);
    assert.equal(response.status, 200, name);
    assert.match(response.headers.get("content-type") ?? "", type);
    const text = await response.text();
    assert.equal(text, await Deno.readTextFile(new URL(`./static/${name}`, import.meta.url)));
    assert.ok(
      !/https?:\/\//.test(text.replace("http://www.w3.org/2000/svg", "")),
      `${name} refers to an external URL`,
    );
  }
});

Deno.test("allowedHosts rejects other Host headers (DNS rebinding)", async () => {
  const runs = await makeRunsDir([]);
  const app = createApp(runs, { allowedHosts: ["127.0.0.1", "localhost", "[::1]"] });
  assert.equal((await app.request("http://127.0.0.1:8787/api/runs")).status, 200);
  assert.equal((await app.request("http://[::1]:8787/api/runs")).status, 200);
  assert.equal((await app.request("http://localhost/api/runs")).status, 200);
  const evil = await app.request("http://evil.example:8787/api/runs");
  assert.equal(evil.status, 403);
  assert.match(String((await evil.json()).error), /host "evil\.example" is not allowed/);
});

/** Reads server-sent events from a response body. */
function sseReader(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async next(): Promise<{ event: string; data: string; id?: string }> {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(":")) continue;
          const event: { event: string; data: string; id?: string } = {
            event: "message",
            data: "",
          };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            const [key, ...rest] = line.split(": ");
            const value = rest.join(": ");
            if (key === "event") event.event = value;
            else if (key === "data") data.push(value);
            else if (key === "id") event.id = value;
          }
          event.data = data.join("\n");
          return event;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buffer += value;
      }
    },
    async until(name: string) {
      for (;;) {
        const event = await this.next();
        if (event.event === name) return event;
      }
    },
    cancel: () => reader.cancel(),
  };
}

Deno.test("GET /api/runs/:name/events streams existing and appended metrics", async () => {
  const { app, runs } = await fixture();
  const response = await app.request("/api/runs/blockrank-dl19/events");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const events = sseReader(response);
  try {
    const run = JSON.parse((await events.until("run")).data);
    assert.equal(run.step, 120);
    const first = await events.until("metrics");
    const chunk = JSON.parse(first.data);
    assert.equal(chunk.metrics.length, 14);
    assert.equal(first.id, chunk.next);

    const path = join(runs, "blockrank-dl19", "metrics.jsonl");
    const line = trainLine(130);
    await Deno.writeTextFile(path, line.slice(0, 20), { append: true });
    const partial = JSON.parse((await events.until("metrics")).data);
    assert.deepEqual(partial.metrics, []);
    assert.deepEqual(partial.malformed, []);
    assert.deepEqual(partial.pending, { line: 15, bytes: 20 });
    await Deno.writeTextFile(path, line.slice(20) + "bad line\n", { append: true });
    const appended = JSON.parse((await events.until("metrics")).data);
    assert.deepEqual(appended.metrics.map((m: { step: number }) => m.step), [130]);
    assert.deepEqual(appended.malformed.map((m: { line: number }) => m.line), [16]);
    assert.equal(appended.pending, null);

    await Deno.writeTextFile(
      join(runs, "blockrank-dl19", "run.json"),
      JSON.stringify(runJson("blockrank-dl19", { step: 130 })),
    );
    assert.equal(JSON.parse((await events.until("run")).data).step, 130);
  } finally {
    await events.cancel();
  }
});

Deno.test("GET /api/runs/:name/events resumes from Last-Event-ID and survives a rewrite", async () => {
  const { app, runs } = await fixture();
  const path = join(runs, "blockrank-dl19", "metrics.jsonl");
  const size = (await Deno.stat(path)).size;
  const response = await app.request("/api/runs/blockrank-dl19/events", {
    headers: { "Last-Event-ID": `${size}:14` },
  });
  const events = sseReader(response);
  try {
    assert.deepEqual(JSON.parse((await events.until("metrics")).data).metrics, []);
    // The run restarts and rewrites the file shorter: the stream starts over with reset.
    await Deno.writeTextFile(path, trainLine(1));
    const reset = JSON.parse((await events.until("metrics")).data);
    assert.equal(reset.reset, true);
    assert.deepEqual(reset.metrics.map((m: { step: number }) => m.step), [1]);
  } finally {
    await events.cancel();
  }
  const bad = await app.request("/api/runs/blockrank-dl19/events?since=nope");
  assert.equal(bad.status, 400);
});

Deno.test("event streams stop polling when the client goes away", async () => {
  const { app } = await fixture();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  for (let i = 0; i < 5; i++) {
    const controller = new AbortController();
    const response = await fetch(`${base}/api/runs/blockrank-dl19/events`, {
      signal: controller.signal,
    });
    const events = sseReader(response);
    assert.equal((await events.until("metrics")).event, "metrics");
    controller.abort();
    await events.cancel().catch(() => {});
  }
  // Every stream's polling loop stops once its client is gone.
  let open = -1;
  for (let i = 0; i < 100 && open !== 0; i++) {
    open = (await (await fetch(`${base}/api/status`)).json()).event_streams;
    if (open !== 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(open, 0);
  await server.shutdown();
});

Deno.test("GET /api/status counts open event streams", async () => {
  const { app, runs } = await fixture();
  assert.deepEqual(await json(await app.request("/api/status")), {
    runs_dir: runs,
    event_streams: 0,
  });
  const events = sseReader(await app.request("/api/runs/older/events"));
  await events.until("metrics");
  assert.equal((await json(await app.request("/api/status"))).event_streams, 1);
  await events.cancel();
});

// ---- nested runs (distill: <run>/phase1, <run>/phase2) ---------------------

/**
 * A runs dir with a top-level run, a distill-style parent `distill-x` with
 * `phase1`/`phase2`, a non-run subdirectory, and an outside directory
 * holding a secret (also as a would-be `phase1`).
 */
async function nestedFixture() {
  const runs = await makeRunsDir([sampleRun("top-run"), ...distillRuns("distill-x")]);
  await Deno.mkdir(join(runs, "distill-x", "notes"));
  await Deno.writeTextFile(join(runs, "distill-x", "notes", "readme.txt"), "not a run\n");
  const outside = await Deno.makeTempDir({ prefix: "irforge-outside-" });
  for (const dir of [outside, join(outside, "phase1")]) {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, "config.yaml"), `secret: ${SECRET}\n`);
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), `{"step": 1, "${SECRET}": 1}\n`);
    await Deno.writeTextFile(
      join(dir, "run.json"),
      JSON.stringify(runJson("x", { recipe: SECRET })),
    );
  }
  return { runs, outside, app: createApp(runs, { pollMs: 20 }) };
}

Deno.test("GET /api/runs lists nested runs with their ids right after their parent", async () => {
  const { app } = await nestedFixture();
  const { runs } = await json(await app.request("/api/runs")) as {
    runs: Record<string, unknown>[];
  };
  // distill-x started 2026-11-24 (its phase1), top-run 2026-11-23: newest first,
  // each parent followed by its nested runs by name. `notes/` holds no run files,
  // top-run's checkpoints/ and eval/ are parts of a run, not runs.
  assert.deepEqual(
    runs.map((r) => [r.name, r.kind, r.parent, r.valid_name]),
    [
      ["distill-x", "group", null, true],
      ["distill-x/phase1", "run", "distill-x", true],
      ["distill-x/phase2", "run", "distill-x", true],
      ["top-run", "run", null, true],
    ],
  );
  const [group, phase1, phase2, top] = runs as Record<string, unknown>[];
  assert.deepEqual(group!.children, ["distill-x/phase1", "distill-x/phase2"]);
  assert.equal(group!.recipe, "distill");
  assert.equal(group!.status, "running", "a running phase makes the group running");
  assert.equal(group!.started_at, "2026-11-24T08:00:00.000Z");
  assert.equal(group!.updated_at, "2026-11-24T09:10:00.000Z");
  assert.equal(group!.finished_at, null);
  assert.equal(group!.error, null, "a group is no run with a missing run.json");
  assert.deepEqual([phase1!.status, phase1!.step, phase1!.total_steps], ["finished", 20, 20]);
  assert.deepEqual([phase2!.status, phase2!.step, phase2!.total_steps], ["running", 10, 40]);
  assert.deepEqual(phase2!.best, { metric: "eval/ndcg@10", value: 0.5625, step: 10 });
  assert.equal(phase1!.error, null);
  assert.deepEqual(top!.children, []);
});

Deno.test("a nested run's detail, metrics, config, checkpoints and evals come from its own files", async () => {
  const { app, runs } = await nestedFixture();
  const detail = await json(await app.request("/api/runs/distill-x/phase2"));
  assert.equal(detail.name, "distill-x/phase2");
  assert.equal(detail.parent, "distill-x");
  assert.equal(detail.step, 10);
  const bytes = (await Deno.stat(join(runs, "distill-x", "phase2", "metrics.jsonl"))).size;
  assert.deepEqual(detail.files, { config: true, metrics: true, metrics_bytes: bytes });

  const m2 = await json(await app.request("/api/runs/distill-x/phase2/metrics"));
  assert.deepEqual(
    (m2.metrics as Record<string, unknown>[]).map((m) => [
      m.step,
      m["train/loss"],
      m["train/infonce_loss"],
      m["eval/ndcg@10"],
    ]),
    [[5, 1.5, 1.25, undefined], [10, 1.125, undefined, 0.5625]],
  );
  assert.equal(m2.next, `${bytes}:2`);
  const m1 = await json(await app.request("/api/runs/distill-x/phase1/metrics"));
  assert.deepEqual(
    (m1.metrics as Record<string, unknown>[]).map((m) => [m.step, m["train/loss"]]),
    [[10, 0.875], [20, 0.625]],
  );
  // The cursor works for a nested run as for any other.
  await Deno.writeTextFile(
    join(runs, "distill-x", "phase2", "metrics.jsonl"),
    metricsLine(15, { "train/loss": 1.0625 }),
    { append: true },
  );
  const more = await json(await app.request(`/api/runs/distill-x/phase2/metrics?since=${m2.next}`));
  assert.deepEqual(
    (more.metrics as Record<string, unknown>[]).map((m) => [m.step, m["train/loss"]]),
    [[15, 1.0625]],
  );

  const config = await json(await app.request("/api/runs/distill-x/phase1/config"));
  assert.deepEqual(config.parsed, { recipe: "distill", phase: 1 });
  const { checkpoints } = await json(
    await app.request("/api/runs/distill-x/phase2/checkpoints"),
  ) as { checkpoints: Record<string, unknown>[] };
  assert.deepEqual(checkpoints.map((c) => [c.name, c.bytes]), [["checkpoint-10", 4321]]);
  const evals = await json(await app.request("/api/runs/distill-x/phase1/eval")) as {
    evaluations: Record<string, unknown>[];
  };
  assert.deepEqual(evals.evaluations.map((e) => [e.step, e.metrics]), [[20, {
    "ndcg@10": 0.4375,
  }]]);
  const one = await json(await app.request("/api/runs/distill-x/phase2/eval/10"));
  assert.deepEqual(one.per_query, { q7: { "ndcg@10": 0.75 }, q8: { "ndcg@10": 0.375 } });
  assert.equal((await app.request("/api/runs/distill-x/phase2/eval/20")).status, 404);

  // The group itself: a summary of its runs, no files of its own.
  const group = await json(await app.request("/api/runs/distill-x"));
  assert.equal(group.kind, "group");
  assert.deepEqual(group.children, ["distill-x/phase1", "distill-x/phase2"]);
  assert.deepEqual(group.files, { config: false, metrics: false, metrics_bytes: 0 });
  assert.deepEqual((await json(await app.request("/api/runs/distill-x/metrics"))).metrics, []);
  // A subdirectory without run files, or a missing one, is no run.
  for (const path of ["/api/runs/distill-x/notes", "/api/runs/distill-x/phase3/metrics"]) {
    const response = await app.request(path);
    assert.equal(response.status, 404, path);
  }
  assert.deepEqual(await json(await app.request("/api/runs/distill-x/notes")), {
    error: 'run "distill-x/notes" not found',
  });
});

Deno.test("pages: nested runs are indented under their parent and open with charts", async () => {
  const { app } = await nestedFixture();
  const list = await (await app.request("/")).text();
  const rows = [
    ...list.matchAll(/<tr class="([^"]*)" data-run="([^"]*)"(?: data-parent="([^"]*)")?>/g),
  ]
    .map((m) => [m[1], m[2], m[3] ?? null]);
  assert.deepEqual(rows, [
    ["top group", "distill-x", null],
    ["nested", "distill-x/phase1", "distill-x"],
    ["nested", "distill-x/phase2", "distill-x"],
    ["top", "top-run", null],
  ]);
  assert.match(list, /<a href="\/runs\/distill-x\/phase1">distill-x\/phase1<\/a>/);
  assert.match(
    list,
    /<a href="\/runs\/distill-x">distill-x<\/a> <span class="muted">\(2 runs\)<\/span>/,
  );

  const page = await app.request("/runs/distill-x/phase2");
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<body data-run="distill-x\/phase2">/);
  assert.match(html, /<script type="module" src="\/static\/run\.js"><\/script>/);
  assert.match(html, /Part of <a href="\/runs\/distill-x">distill-x<\/a>/);
  assert.match(html, /<dd id="run-steps">10 \/ 40<\/dd>/);
  assert.match(html, /<pre class="config">recipe: distill\nphase: 2\n<\/pre>/);
  assert.match(html, /checkpoints\/checkpoint-10/);

  const groupPage = await app.request("/runs/distill-x");
  assert.equal(groupPage.status, 200);
  const groupHtml = await groupPage.text();
  assert.match(groupHtml, /<a href="\/runs\/distill-x\/phase1">distill-x\/phase1<\/a>/);
  assert.match(groupHtml, /<a href="\/runs\/distill-x\/phase2">distill-x\/phase2<\/a>/);
  assert.match(
    groupHtml,
    /<a href="\/compare\?runs=distill-x%2Fphase1&amp;runs=distill-x%2Fphase2">compare them<\/a>/,
  );
  assert.ok(!groupHtml.includes("/static/run.js"), "a group has no charts of its own");

  // The compare view offers the phases (not the group) and their metrics load.
  const compare = await (await app.request("/compare?runs=distill-x/phase1")).text();
  assert.match(compare, /<input type="checkbox" name="runs" value="distill-x\/phase1" checked>/);
  assert.match(compare, /<input type="checkbox" name="runs" value="distill-x\/phase2">/);
  assert.ok(!compare.includes('value="distill-x">'), "the group is not comparable");
});

Deno.test("GET /api/runs/<parent>/<name>/events streams a nested run live", async () => {
  const { app, runs } = await nestedFixture();
  const response = await app.request("/api/runs/distill-x/phase2/events");
  assert.equal(response.status, 200);
  const events = sseReader(response);
  try {
    assert.deepEqual(JSON.parse((await events.until("hello")).data), { run: "distill-x/phase2" });
    const run = JSON.parse((await events.until("run")).data);
    assert.deepEqual([run.name, run.step, run.status], ["distill-x/phase2", 10, "running"]);
    const first = JSON.parse((await events.until("metrics")).data);
    assert.deepEqual(first.metrics.map((m: Record<string, number>) => m["train/loss"]), [
      1.5,
      1.125,
    ]);
    const dir = join(runs, "distill-x", "phase2");
    await Deno.writeTextFile(
      join(dir, "metrics.jsonl"),
      metricsLine(15, { "train/loss": 0.9375 }),
      { append: true },
    );
    const appended = JSON.parse((await events.until("metrics")).data);
    assert.deepEqual(
      appended.metrics.map((m: Record<string, number>) => [m.step, m["train/loss"]]),
      [[15, 0.9375]],
    );
    await Deno.writeTextFile(
      join(dir, "run.json"),
      JSON.stringify(runJson("distill-x-phase2", { recipe: "distill", step: 15 })),
    );
    assert.equal(JSON.parse((await events.until("run")).data).step, 15);
  } finally {
    await events.cancel();
  }
});

/** Sends `GET path` as written (no URL normalisation) to a live server; returns status and body. */
async function rawGet(port: number, path: string): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let text = "";
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, text };
  } finally {
    conn.close();
  }
}

Deno.test("nested ids: traversal and symlinks out of the runs directory are refused", async () => {
  const { app, runs, outside } = await nestedFixture();
  // A nested symlink leading outside; a top-level one whose target holds a `phase1`;
  // a nested run whose run.json links outside.
  await Deno.symlink(outside, join(runs, "distill-x", "leak"));
  await Deno.symlink(outside, join(runs, "escape"));
  await Deno.mkdir(join(runs, "distill-x", "phase3"));
  await Deno.symlink(join(outside, "run.json"), join(runs, "distill-x", "phase3", "run.json"));

  const cases: [string, number][] = [
    ["/api/runs/..%2F..%2Fetc/metrics", 400],
    ["/api/runs/distill-x%2Fphase1", 400],
    ["/api/runs/distill-x%2fphase1/metrics", 400],
    ["/api/runs/distill-x/..%2F..%2Fescape", 400],
    ["/api/runs/distill-x/..%2F..%2F..%2Fetc%2Fpasswd/config", 400],
    // The URL parser turns `%2e%2e` into `..` first: this is `/api/runs/escape/config`.
    ["/api/runs/distill-x/%2e%2e/escape/config", 403],
    ["/api/runs/distill-x%252Fphase1", 400],
    ["/api/runs/distill-x/phase1/extra", 400],
    ["/api/runs/distill-x/phase1/extra/metrics", 400],
    ["/api/runs/distill-x/-bad/metrics", 400],
    ["/api/runs/distill-x/", 400],
    ["/runs/distill-x/..%2F..%2Fescape", 400],
    ["/runs/top-run/checkpoints", 400],
    ["/runs/distill-x/phase1/x", 400],
    ["/api/runs/distill-x/leak", 403],
    ["/api/runs/distill-x/leak/metrics", 403],
    ["/api/runs/distill-x/leak/config", 403],
    ["/api/runs/distill-x/leak/events", 403],
    ["/runs/distill-x/leak", 403],
    ["/api/runs/escape/phase1", 403],
    ["/api/runs/escape/phase1/config", 403],
    ["/api/runs/escape/phase1/metrics", 403],
  ];
  for (const [path, status] of cases) {
    const response = await app.request(path);
    const text = await response.text();
    assert.equal(response.status, status, path);
    assert.ok(!text.includes(SECRET), `${path} leaked the secret`);
  }
  // Dot segments as sent over the wire (no client-side URL normalisation).
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    for (
      const path of [
        "/api/runs/a/../../etc",
        "/api/runs/distill-x/../../etc/passwd",
        "/api/runs/distill-x/../escape/config",
        "/api/runs/distill-x/phase1/../../escape/metrics",
        "/runs/distill-x/../../../etc/passwd",
        "/api/runs/distill-x/./phase1/metrics",
      ]
    ) {
      const { status, text } = await rawGet(server.addr.port, path);
      assert.equal(status, 400, path);
      assert.ok(!text.includes(SECRET), `${path} leaked the secret`);
    }
    // The same server answers a plain nested request.
    assert.equal((await rawGet(server.addr.port, "/api/runs/distill-x/phase1")).status, 200);
  } finally {
    await server.shutdown();
  }
  // The list: the nested link outside is not listed (nor read); the run.json link is an error.
  const { runs: list } = await json(await app.request("/api/runs")) as {
    runs: Record<string, unknown>[];
  };
  assert.ok(!JSON.stringify(list).includes(SECRET));
  assert.deepEqual(
    list.filter((r) => r.parent === "distill-x").map((r) => r.name),
    ["distill-x/phase1", "distill-x/phase2", "distill-x/phase3"],
  );
  assert.equal(
    list.find((r) => r.name === "distill-x/phase3")!.error,
    "distill-x/phase3/run.json points outside the runs directory",
  );
  assert.equal(list.find((r) => r.name === "escape")!.error, "points outside the runs directory");
  const phase3 = await app.request("/api/runs/distill-x/phase3");
  assert.equal(phase3.status, 200);
  assert.ok(!(await phase3.text()).includes(SECRET));
});

Deno.test("a nested directory named like a route part is listed but cannot be opened", async () => {
  const runs = await makeRunsDir([
    ...distillRuns("d"),
    { name: "d/metrics", runJson: runJson("d-metrics") },
    { name: "d/bad name", runJson: runJson("bad") },
  ]);
  const app = createApp(runs);
  const { runs: list } = await json(await app.request("/api/runs")) as {
    runs: Record<string, unknown>[];
  };
  assert.deepEqual(list.map((r) => [r.name, r.valid_name, r.error]), [
    ["d", true, null],
    ["d/bad name", false, "invalid run name: cannot be opened"],
    ["d/metrics", false, "invalid run name: cannot be opened"],
    ["d/phase1", true, null],
    ["d/phase2", true, null],
  ]);
  // `/api/runs/d/metrics` is the metrics of `d` (a group: none), never the run `d/metrics`.
  assert.deepEqual((await json(await app.request("/api/runs/d/metrics"))).metrics, []);
  assert.equal((await app.request("/runs/d/metrics")).status, 400);
  // The group page lists them too, without links.
  const group = await app.request("/runs/d");
  assert.equal(group.status, 200);
  const groupHtml = await group.text();
  assert.match(groupHtml, /<td>d\/metrics<div class="error">invalid run name: cannot be opened/);
  assert.match(groupHtml, /<a href="\/runs\/d\/phase2">d\/phase2<\/a>/);
  const page = await (await app.request("/")).text();
  assert.ok(!page.includes('href="/runs/d/metrics"'));
  assert.match(page, /<td>d\/bad name<div class="error">invalid run name: cannot be opened/);
});

Deno.test("other HTTP methods get 405 with Allow: GET, HEAD", async () => {
  const { app } = await fixture();
  for (const [method, path] of [["POST", "/api/runs"], ["DELETE", "/runs/older"], ["PUT", "/"]]) {
    const response = await app.request(path!, { method });
    assert.equal(response.status, 405, `${method} ${path}`);
    assert.equal(response.headers.get("allow"), "GET, HEAD");
    await response.body?.cancel();
  }
  const api = await app.request("/api/runs", { method: "POST" });
  assert.deepEqual(await api.json(), {
    error: "method POST is not allowed: the dashboard is read-only",
  });
});

Deno.test("runs list: Best shows the main metric's best evaluation when run.json has none", async () => {
  const runs = await makeRunsDir([{
    name: "evaluated",
    runJson: runJson("evaluated", { status: "finished", best: null }),
    metrics: trainLine(5),
    evals: [
      { step: 0, content: { step: 0, metrics: { map: 0.9, "ndcg@10": 0.25 } } },
      { step: 10, content: { step: 10, metrics: { map: 0.1, "ndcg@10": 0.5 } } },
      { step: 20, content: { step: 20, metrics: { map: 0.2, "ndcg@10": 0.4 } } },
    ],
  }]);
  const app = createApp(runs);
  const { runs: listed } = await json(await app.request("/api/runs")) as {
    runs: Record<string, unknown>[];
  };
  assert.deepEqual(listed[0]!.best, { metric: "eval/ndcg@10", value: 0.5, step: 10 });
  const page = await (await app.request("/")).text();
  assert.match(page, /eval\/ndcg@10 = 0\.5\d* @ 10/);
});

Deno.test("run page shows the WebGPU provider and adapter from run.json", async () => {
  const runs = await makeRunsDir([{
    name: "on-dawn",
    runJson: runJson("on-dawn", {
      device: {
        provider: "dawn",
        description: "NVIDIA H200",
        features: ["subgroups"],
        subgroup_sizes: [32, 32],
        subgroup_matrix_configs: ["f16→f32 16×16×16"],
      },
    }),
    metrics: trainLine(1),
  }, { name: "bad-device", runJson: runJson("bad-device", { device: "h200" }) }]);
  const app = createApp(runs, { pollMs: 20 });
  const page = await (await app.request("/runs/on-dawn")).text();
  assert.match(
    page,
    /id="run-device">dawn · NVIDIA H200 · subgroups 32–32 · subgroup matrices f16→f32 16×16×16</,
  );
  const { runs: listed } = await json(await app.request("/api/runs")) as {
    runs: Record<string, unknown>[];
  };
  const bad = listed.find((r) => r.name === "bad-device")!;
  assert.match(String(bad.error), /bad-device\/run\.json.*device/);
});
