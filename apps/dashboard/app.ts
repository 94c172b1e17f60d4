/**
 * The dashboard's hono application: HTML pages, the JSON API under `/api`,
 * the event stream and the static assets, all reading one runs directory.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { InputError } from "@irforge/data/input-error";
import { readAsset } from "./assets.ts";
import { runEvents } from "./events.ts";
import { HttpError } from "./http_error.ts";
import { comparePage, errorPage, runPage, runsPage } from "./html.ts";
import { parseCursor, readMetrics } from "./metrics.ts";
import {
  listCheckpoints,
  listEvaluations,
  listRuns,
  readConfig,
  readEvaluation,
  readRunSummary,
  type RunConfig,
} from "./runs.ts";
import { resolveInsideOrNull } from "./safe_paths.ts";

/** Options of {@linkcode createApp}. */
export interface DashboardOptions {
  /** How often the event stream looks at the run's files, in ms (default 500). */
  pollMs?: number;
  /** Keep-alive comment interval of the event stream, in ms (default 15000). */
  keepAliveMs?: number;
  /**
   * Accepted `Host` header names (without port). When set, other hosts get
   * 403: this stops DNS-rebinding pages from reading a loopback dashboard.
   */
  allowedHosts?: string[];
}

/** Statuses after which a run writes nothing more. */
const ENDED = new Set(["finished", "failed", "interrupted"]);

/**
 * Percent-encoded separators, dots and NULs, backslashes, and `.`/`..`
 * segments in the raw path. Valid URLs of this app never contain them.
 */
const SUSPICIOUS_PATH = /%2f|%5c|%2e|%00|\\|(^|\/)\.\.?(\/|$)/i;

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; " +
    "frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

/** The host name of a `Host` header, without port (handles `[::1]:8787`). */
function hostName(header: string): string {
  const bracket = /^\[([^\]]*)\]/.exec(header);
  if (bracket) return `[${bracket[1]}]`;
  return header.replace(/:\d*$/, "");
}

function isApi(c: Context): boolean {
  return c.req.path === "/api" || c.req.path.startsWith("/api/");
}

/** Answers an error as JSON under `/api`, as an HTML page elsewhere. */
function failure(
  c: Context,
  status: 400 | 403 | 404 | 422 | 500,
  message: string,
): Response | Promise<Response> {
  if (isApi(c)) return c.json({ error: message }, status);
  return c.html(errorPage(status, message), status);
}

/**
 * Creates the dashboard for the runs in `runsDir` (layout in
 * `docs/run-layout.md`). Only files inside `runsDir` are ever read.
 */
export function createApp(runsDir: string, options: DashboardOptions = {}): Hono {
  const events = {
    pollMs: options.pollMs ?? 500,
    keepAliveMs: options.keepAliveMs ?? 15_000,
    counter: { open: 0 },
  };
  const allowedHosts = options.allowedHosts?.map((h) => h.toLowerCase());
  const app = new Hono();

  app.use("*", async (c, next) => {
    if (allowedHosts) {
      // Deno.serve builds the URL from the Host header; app.request has only the URL.
      const host = hostName((c.req.header("Host") ?? new URL(c.req.url).host).toLowerCase());
      if (!allowedHosts.includes(host)) {
        return failure(c, 403, `host ${JSON.stringify(host)} is not allowed`);
      }
    }
    // The path as sent: `new URL()` would resolve `..` and `%2e%2e` segments first.
    const rawPath = c.req.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "").replace(
      /[?#].*$/s,
      "",
    );
    if (SUSPICIOUS_PATH.test(rawPath)) {
      return failure(c, 400, "invalid path: encoded separators, dots or '..' are not allowed");
    }
    await next();
    for (const [key, value] of Object.entries(SECURITY_HEADERS)) c.header(key, value);
  });

  app.onError((error, c) => {
    if (error instanceof HttpError) return failure(c, error.status, error.message);
    if (error instanceof InputError) return failure(c, 422, error.message);
    console.error(error);
    return failure(c, 500, "internal error (see the server log)");
  });
  app.notFound((c) => failure(c, 404, `no such page: ${c.req.path}`));

  // ---- JSON API ----------------------------------------------------------

  app.get("/api/status", (c) => c.json({ runs_dir: runsDir, event_streams: events.counter.open }));

  app.get("/api/runs", async (c) => c.json({ runs: await listRuns(runsDir) }));

  app.get("/api/runs/:name", async (c) => {
    const name = c.req.param("name");
    const summary = await readRunSummary(runsDir, name);
    const metricsPath = await resolveInsideOrNull(runsDir, [name, "metrics.jsonl"]);
    const configPath = await resolveInsideOrNull(runsDir, [name, "config.yaml"]);
    return c.json({
      ...summary,
      files: {
        config: configPath !== null,
        metrics: metricsPath !== null,
        metrics_bytes: metricsPath === null ? 0 : (await Deno.stat(metricsPath)).size,
      },
    });
  });

  app.get("/api/runs/:name/metrics", async (c) => {
    const name = c.req.param("name");
    const cursor = parseCursor(c.req.query("since"));
    const summary = await readRunSummary(runsDir, name);
    const path = await resolveInsideOrNull(runsDir, [name, "metrics.jsonl"]);
    const final = summary.status !== null && ENDED.has(summary.status);
    return c.json(await readMetrics(path, cursor, { final }));
  });

  app.get(
    "/api/runs/:name/config",
    async (c) => c.json(await readConfig(runsDir, c.req.param("name"))),
  );

  app.get(
    "/api/runs/:name/checkpoints",
    async (c) => c.json({ checkpoints: await listCheckpoints(runsDir, c.req.param("name")) }),
  );

  app.get(
    "/api/runs/:name/eval",
    async (c) => c.json(await listEvaluations(runsDir, c.req.param("name"))),
  );

  app.get(
    "/api/runs/:name/eval/:step",
    async (c) => c.json(await readEvaluation(runsDir, c.req.param("name"), c.req.param("step"))),
  );

  app.get("/api/runs/:name/events", (c) => runEvents(c, runsDir, c.req.param("name"), events));

  // ---- pages --------------------------------------------------------------

  app.get("/", async (c) => c.html(runsPage(runsDir, await listRuns(runsDir))));

  app.get("/runs/:name", async (c) => {
    const name = c.req.param("name");
    const summary = await readRunSummary(runsDir, name);
    let config: RunConfig | null = null;
    try {
      config = await readConfig(runsDir, name);
    } catch (error) {
      if (!(error instanceof HttpError) || error.status === 400) throw error;
      // 404: no config yet; 403: a symlink leading outside, shown as an error.
      if (error.status === 403) config = { text: "", parsed: null, error: error.message };
    }
    const [checkpoints, evals] = await Promise.all([
      listCheckpoints(runsDir, name),
      listEvaluations(runsDir, name),
    ]);
    return c.html(runPage({
      summary,
      config,
      checkpoints,
      evaluations: evals.evaluations,
      evalErrors: evals.errors,
    }));
  });

  app.get("/compare", async (c) => {
    const runs = await listRuns(runsDir);
    return c.html(comparePage(runs, c.req.queries("runs") ?? [], c.req.query("metric") ?? ""));
  });

  app.get("/static/:file", async (c) => {
    const asset = await readAsset(c.req.param("file"));
    if (asset === null) return failure(c, 404, `no such asset: ${c.req.param("file")}`);
    return c.body(asset.body, 200, { "Content-Type": asset.type, "Cache-Control": "no-cache" });
  });

  return app;
}
