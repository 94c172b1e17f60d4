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
import { readProfile } from "./profile.ts";
import { HttpError } from "./http_error.ts";
import { comparePage, errorPage, groupPage, runPage, runsPage } from "./html.ts";
import { parseCursor, readMetrics } from "./metrics.ts";
import {
  listCheckpoints,
  listEvaluations,
  listRuns,
  readConfig,
  readEvaluation,
  readRunSummary,
  readRunTree,
  type RunConfig,
} from "./runs.ts";
import { RESERVED_CHILD_NAMES, resolveInsideOrNull, runSegments } from "./safe_paths.ts";

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

/** The sub-resources of a run under `/api/runs/<id>/` (all in `RESERVED_CHILD_NAMES`). */
type RunResource = "metrics" | "config" | "checkpoints" | "eval" | "events";

/** The path as sent: `new URL()` would resolve `..` and `%2e%2e` segments first. */
function rawPath(c: Context): string {
  return c.req.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "").replace(/[?#].*$/s, "");
}

/**
 * The raw path after `prefix` (the routes below match on hono's decoded
 * path; this reads the undecoded one, so nothing is decoded twice).
 */
function rawPathAfter(c: Context, prefix: string): string {
  const path = rawPath(c);
  if (!path.startsWith(prefix)) throw new HttpError(400, "invalid path: unexpected encoding");
  return path.slice(prefix.length);
}

/**
 * Percent-decodes each `/`-separated part of a raw path (400 for a bad
 * escape). The middleware has already refused encoded separators and dots,
 * so no part decodes to a `/`, `\\` or `..`.
 */
function decodeSegments(path: string): string[] {
  return path.split("/").map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new HttpError(400, `invalid path: bad percent-encoding in ${JSON.stringify(part)}`);
    }
  });
}

/**
 * Splits what follows `/api/runs/` into the run id, the sub-resource and the
 * eval step: `a` and `a/b` are runs, `a/metrics` and `a/b/metrics` their
 * metrics, `a/eval/50` and `a/b/eval/50` one evaluation. A nested run can
 * never be named like a sub-resource (`RESERVED_CHILD_NAMES`), so this is
 * unambiguous; the id is validated by the readers (400 when bad).
 */
function runRoute(rest: string): { id: string; sub: RunResource | null; step: string | null } {
  const parts = decodeSegments(rest);
  const n = parts.length;
  if (n >= 3 && parts[n - 2] === "eval") {
    return { id: parts.slice(0, -2).join("/"), sub: "eval", step: parts[n - 1]! };
  }
  if (n >= 2 && RESERVED_CHILD_NAMES.has(parts[n - 1]!)) {
    return { id: parts.slice(0, -1).join("/"), sub: parts[n - 1] as RunResource, step: null };
  }
  return { id: parts.join("/"), sub: null, step: null };
}

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
  status: 400 | 403 | 404 | 405 | 422 | 500,
  message: string,
): Response | Promise<Response> {
  if (isApi(c)) return c.json({ error: message }, status);
  return c.html(errorPage(status, message), status);
}

/** The dashboard as an HTTP handler (a hono app underneath). */
export interface DashboardApp {
  /** Answers one request; bound, so `Deno.serve(options, app.fetch)` works. */
  readonly fetch: (request: Request) => Response | Promise<Response>;
  /** Answers a request for a path or URL without a server (tests, scripts). */
  readonly request: (
    input: string | URL | Request,
    init?: RequestInit,
  ) => Response | Promise<Response>;
}

/**
 * Creates the dashboard for the runs in `runsDir` (layout in
 * `docs/run-layout.md`). Only files inside `runsDir` are ever read.
 */
export function createApp(runsDir: string, options: DashboardOptions = {}): DashboardApp {
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
    if (SUSPICIOUS_PATH.test(rawPath(c))) {
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
  // Read-only: every other method is 405 with the methods that exist, not a misleading 404.
  app.use("*", async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return await next();
    c.header("Allow", "GET, HEAD");
    return failure(c, 405, `method ${c.req.method} is not allowed: the dashboard is read-only`);
  });

  // ---- JSON API ----------------------------------------------------------

  app.get("/api/status", (c) => c.json({ runs_dir: runsDir, event_streams: events.counter.open }));

  app.get("/api/runs", async (c) => c.json({ runs: await listRuns(runsDir) }));

  // Run ids may hold one literal "/" (`distill-x/phase1`), so the run routes
  // split the path themselves: see `runRoute`.
  app.get("/api/runs/*", async (c) => {
    const { id, sub, step } = runRoute(rawPathAfter(c, "/api/runs/"));
    switch (sub) {
      case null: {
        const summary = await readRunSummary(runsDir, id);
        const segments = runSegments(id);
        const metricsPath = await resolveInsideOrNull(runsDir, [...segments, "metrics.jsonl"]);
        const configPath = await resolveInsideOrNull(runsDir, [...segments, "config.yaml"]);
        return c.json({
          ...summary,
          files: {
            config: configPath !== null,
            metrics: metricsPath !== null,
            metrics_bytes: metricsPath === null ? 0 : (await Deno.stat(metricsPath)).size,
          },
        });
      }
      case "metrics": {
        const cursor = parseCursor(c.req.query("since"));
        const summary = await readRunSummary(runsDir, id);
        const path = await resolveInsideOrNull(runsDir, [...runSegments(id), "metrics.jsonl"]);
        const final = summary.status !== null && ENDED.has(summary.status);
        return c.json(await readMetrics(path, cursor, { final }));
      }
      case "config":
        return c.json(await readConfig(runsDir, id));
      case "checkpoints":
        return c.json({ checkpoints: await listCheckpoints(runsDir, id) });
      case "eval":
        return c.json(
          step === null
            ? await listEvaluations(runsDir, id)
            : await readEvaluation(runsDir, id, step),
        );
      case "events":
        return await runEvents(c, runsDir, id, events);
    }
  });

  // ---- pages --------------------------------------------------------------

  app.get("/", async (c) => c.html(runsPage(runsDir, await listRuns(runsDir))));

  app.get("/runs/*", async (c) => {
    const name = decodeSegments(rawPathAfter(c, "/runs/")).join("/");
    const { summary, children: nested } = await readRunTree(runsDir, name);
    if (summary.kind === "group") return c.html(groupPage(summary, nested));
    let config: RunConfig | null = null;
    try {
      config = await readConfig(runsDir, name);
    } catch (error) {
      if (!(error instanceof HttpError) || error.status === 400) throw error;
      // 404: no config yet; 403: a symlink leading outside, shown as an error.
      if (error.status === 403) config = { text: "", parsed: null, error: error.message };
    }
    const [checkpoints, evals, profile] = await Promise.all([
      listCheckpoints(runsDir, name),
      listEvaluations(runsDir, name),
      readProfile(runsDir, name),
    ]);
    return c.html(runPage({
      summary,
      config,
      checkpoints,
      evaluations: evals.evaluations,
      evalErrors: evals.errors,
      nested,
      profile,
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
