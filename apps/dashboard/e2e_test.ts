/**
 * End-to-end test in real headless Chromium (Debian's `/usr/bin/chromium`,
 * driven by playwright-core): the run page's chart grows while the test
 * appends to `metrics.jsonl`. Skipped, with the reason printed, where
 * Chromium is not installed. Screenshots go to `$IRFORGE_SCREENSHOT_DIR`
 * or a temporary directory (printed).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { createApp } from "./app.ts";
import {
  distillRuns,
  makeRunsDir,
  metricsLine,
  runJson,
  sampleRun,
  trainLine,
} from "./test_fixtures.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
];

function chromiumMissing(): string | null {
  try {
    return Deno.statSync(CHROMIUM).isFile ? null : `${CHROMIUM} is not a file`;
  } catch {
    return `${CHROMIUM} not found (apt-get install -y chromium)`;
  }
}

const missing = chromiumMissing();
if (missing !== null) console.log(`skipping the dashboard browser test: ${missing}`);

/** Collects page errors and console errors (a CSP violation shows up here). */
function watchErrors(page: Page, base: string): string[] {
  const errors: string[] = [];
  // Offline by design: every request must go to the dashboard itself.
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith("data:")) errors.push(`external: ${url}`);
  });
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
  });
  return errors;
}

async function screenshotDir(): Promise<string> {
  const dir = Deno.env.get("IRFORGE_SCREENSHOT_DIR") ??
    await Deno.makeTempDir({ prefix: "irforge-dashboard-shots-" });
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

Deno.test({
  name: "browser: run page charts update live as metrics.jsonl grows; compare view plots runs",
  ignore: missing !== null,
  // playwright keeps its own pipes and timers open across the browser's life.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const run = sampleRun("live-run");
    const runs = await makeRunsDir([
      run,
      {
        ...sampleRun("other-run", 80),
        runJson: runJson("other-run", { status: "finished", step: 80 }),
      },
      {
        name: "xss-run",
        runJson: runJson("xss-run", { recipe: "<img src=x onerror=window.__xss=1>" }),
        metrics: JSON.stringify({ step: 1, "train/<img src=x onerror=window.__xss=2>": 1 }) + "\n",
      },
      ...distillRuns("distill-x"),
    ]);
    const metricsPath = join(runs, "live-run", "metrics.jsonl");
    const app = createApp(runs, { pollMs: 100 });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const shots = await screenshotDir();
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors = watchErrors(page, base);
      await page.goto(`${base}/runs/live-run`);

      // 12 training lines (steps 10..120) are on the loss chart once the stream delivered them.
      const loss = page.locator('path[data-series="train/loss"]');
      await loss.and(page.locator('[data-points="12"]')).waitFor({ timeout: 15_000 });
      await page.locator('#live[data-state="live"]').waitFor();
      const evalPoints = await page.locator('path[data-series="eval/ndcg@10"]').getAttribute(
        "data-points",
      );
      assert.equal(evalPoints, "2");
      // One chart per unit: the epoch has its own, and no empty "other" chart is drawn.
      for (const group of ["loss", "lr", "throughput", "eval", "epoch"]) {
        assert.equal(await page.locator(`figure[data-chart="${group}"]`).count(), 1, group);
      }
      assert.equal(await page.locator('figure[data-chart="other"]').count(), 0);
      const before = await loss.getAttribute("d");

      // Training appends a line: the chart grows without a reload.
      await Deno.writeTextFile(metricsPath, trainLine(130), { append: true });
      await loss.and(page.locator('[data-points="13"]')).waitFor({ timeout: 10_000 });
      const after = await loss.getAttribute("d");
      assert.ok(after !== null && before !== null && after.length > before.length);
      assert.equal(await page.locator("#charts").getAttribute("data-records"), "15");

      // A half-written line is pending, then a malformed line is listed as such.
      await Deno.writeTextFile(metricsPath, '{"step": 140, "train/lo', { append: true });
      await page.locator("#pending:not([hidden])").waitFor({ timeout: 10_000 });
      assert.match(await page.locator("#pending").innerText(), /line 16 is being written/);
      await Deno.writeTextFile(metricsPath, 'ss": oops}\n' + trainLine(150), { append: true });
      await page.locator('#malformed[data-count="1"]').waitFor({ timeout: 10_000 });
      assert.match(await page.locator("#malformed li").innerText(), /line 16: not JSON/);
      await loss.and(page.locator('[data-points="14"]')).waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#pending").isHidden(), true);

      // Per-query metrics load on demand.
      await page.locator('button.per-query[data-step="50"]').click();
      await page.locator('table.per-query-table[data-step="50"] tbody tr').nth(1).waitFor();
      assert.equal(await page.locator("table.per-query-table tbody tr").count(), 2);

      // The log-scale toggle redraws the loss axis.
      const linearLabels = await page.locator('figure[data-chart="loss"] .axes text')
        .allInnerTexts();
      await page.locator('figure[data-chart="loss"] .log-toggle input').check();
      const logLabels = await page.locator('figure[data-chart="loss"] .axes text').allInnerTexts();
      assert.notDeepEqual(logLabels, linearLabels);
      await page.locator('figure[data-chart="loss"] .log-toggle input').uncheck();

      await page.screenshot({ path: join(shots, "run-page.png"), fullPage: true });

      // Runs list and compare view.
      await page.goto(`${base}/`);
      // 3 top-level runs, the distill group and its 2 phases, indented under it.
      assert.equal(await page.locator("table.runs tbody tr").count(), 6);
      assert.deepEqual(
        await page.locator("table.runs tbody tr.nested a").allInnerTexts(),
        ["distill-x/phase1", "distill-x/phase2"],
      );
      const indent = await page.locator("table.runs tr.nested td").first().evaluate((td) =>
        getComputedStyle(td).paddingLeft
      );
      assert.equal(indent, "28px");
      await page.screenshot({ path: join(shots, "runs-list.png"), fullPage: true });

      // A nested run opens from the list; its chart is live like any other.
      await page.locator('a[href="/runs/distill-x/phase2"]').click();
      await page.waitForURL(`${base}/runs/distill-x/phase2`);
      const phaseLoss = page.locator('path[data-series="train/loss"]');
      await phaseLoss.and(page.locator('[data-points="2"]')).waitFor({ timeout: 15_000 });
      await Deno.writeTextFile(
        join(runs, "distill-x", "phase2", "metrics.jsonl"),
        metricsLine(15, { "train/loss": 0.9375 }),
        { append: true },
      );
      await phaseLoss.and(page.locator('[data-points="3"]')).waitFor({ timeout: 10_000 });
      await page.locator('button.per-query[data-step="10"]').click();
      await page.locator('table.per-query-table[data-step="10"] tbody tr').nth(1).waitFor();
      await page.screenshot({ path: join(shots, "nested-run.png"), fullPage: true });
      await page.goto(`${base}/compare?runs=live-run&runs=other-run&metric=train/loss`);
      await page.locator('path[data-series="live-run"][data-points="14"]').waitFor({
        timeout: 10_000,
      });
      await page.locator('path[data-series="other-run"][data-points="8"]').waitFor();
      assert.deepEqual(
        await page.locator("#metric option").allInnerTexts(),
        [
          "epoch",
          "eval/mrr@10",
          "eval/ndcg@10",
          "tokens_per_s",
          "train/learning_rate",
          "train/lm_loss",
          "train/loss",
        ],
      );
      await page.locator("#metric").selectOption("eval/ndcg@10");
      await page.locator('path[data-series="live-run"][data-points="2"]').waitFor();
      assert.match(page.url(), /metric=eval%2Fndcg%4010/);
      await page.screenshot({ path: join(shots, "compare.png"), fullPage: true });

      // Text from run files shows as text, never as markup.
      await page.goto(`${base}/runs/xss-run`);
      await page.locator("path[data-points='1']").waitFor({ state: "attached" });
      assert.equal(await page.locator("main img").count(), 0);
      assert.equal(await page.evaluate("window.__xss"), undefined);
      assert.match(
        await page.locator(".legend").innerText(),
        /train\/<img src=x onerror=window.__xss=2>/,
      );

      assert.deepEqual(errors, []);
      console.log(`screenshots in ${shots}`);
    } finally {
      await browser?.close();
      await server.shutdown();
    }
  },
});
