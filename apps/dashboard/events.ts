/**
 * Server-sent events for one run: the server polls `metrics.jsonl` and
 * `run.json` and pushes what changed.
 *
 * Events: `run` (the run summary, whenever it changes), `metrics` (a
 * {@linkcode MetricsChunk}; its `id` is the cursor, so a reconnecting
 * `EventSource` resumes where it stopped via `Last-Event-ID`), and
 * `problem` (a message, when reading failed; polling goes on).
 *
 * @module
 */

import type { Context } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { HttpError } from "./http_error.ts";
import { type MetricsCursor, parseCursor, readMetrics } from "./metrics.ts";
import { readRunSummary } from "./runs.ts";
import { resolveInsideOrNull, resolveRunDir, runSegments } from "./safe_paths.ts";

/** Timing of the event stream. */
export interface EventOptions {
  /** How often to look at the files, in ms (default 500). */
  pollMs: number;
  /** Send a comment line after this long without events, in ms (default 15000). */
  keepAliveMs: number;
  /** Live count of open event streams (shown by `GET /api/status`). */
  counter: { open: number };
}

/** Statuses after which the run writes nothing more. */
const ENDED = new Set(["finished", "failed", "interrupted"]);

/**
 * Answers `GET /api/runs/<id>/events` (`id` may be nested, `parent/name`). Validates the run and the cursor
 * (`?since=` or the `Last-Event-ID` header) before streaming, so bad
 * requests get a plain 400/404.
 */
export async function runEvents(
  c: Context,
  root: string,
  name: string,
  options: EventOptions,
): Promise<Response> {
  await resolveRunDir(root, name);
  const cursor = parseCursor(c.req.query("since") ?? c.req.header("Last-Event-ID"));
  return streamSSE(c, async (stream) => {
    options.counter.open++;
    try {
      await pollRun(stream, root, name, cursor, options);
    } finally {
      options.counter.open--;
    }
  });
}

/** Polls the run's files and writes events until the client goes away. */
async function pollRun(
  stream: SSEStreamingApi,
  root: string,
  name: string,
  start: MetricsCursor,
  options: EventOptions,
): Promise<void> {
  let cursor = start;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wake: (() => void) | undefined;
  stream.onAbort(() => {
    clearTimeout(timer);
    wake?.();
  });
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });

  await stream.writeSSE({ event: "hello", data: JSON.stringify({ run: name }), retry: 2000 });
  let lastSummary = "";
  let lastPending = "";
  let first = true;
  let quietSince = Date.now();
  let lastProblem = "";
  while (!stream.aborted && !stream.closed) {
    try {
      const summary = await readRunSummary(root, name);
      const summaryText = JSON.stringify(summary);
      if (summaryText !== lastSummary) {
        await stream.writeSSE({ event: "run", data: summaryText });
        lastSummary = summaryText;
        quietSince = Date.now();
      }
      const path = await resolveInsideOrNull(root, [...runSegments(name), "metrics.jsonl"]);
      const final = summary.status !== null && ENDED.has(summary.status);
      let chunk;
      try {
        chunk = await readMetrics(path, cursor, { final, maxBytes: 1 << 20 });
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        // The cursor no longer falls on a line start: the file was rewritten. Start over.
        chunk = {
          ...(await readMetrics(path, { bytes: 0, lines: 0 }, { final, maxBytes: 1 << 20 })),
          reset: true,
        };
      }
      const pendingText = JSON.stringify(chunk.pending);
      if (
        first || chunk.reset || chunk.metrics.length > 0 || chunk.malformed.length > 0 ||
        pendingText !== lastPending
      ) {
        await stream.writeSSE({ event: "metrics", id: chunk.next, data: JSON.stringify(chunk) });
        quietSince = Date.now();
      }
      first = false;
      lastPending = pendingText;
      lastProblem = "";
      cursor = parseCursor(chunk.next);
      if (chunk.more) continue;
    } catch (error) {
      // Keep the stream (and the server) alive; tell the page once per distinct problem.
      const message = (error as Error).message;
      if (message !== lastProblem && !stream.aborted) {
        await stream.writeSSE({ event: "problem", data: message });
        lastProblem = message;
      }
    }
    if (Date.now() - quietSince >= options.keepAliveMs && !stream.aborted) {
      await stream.write(": keep-alive\n\n");
      quietSince = Date.now();
    }
    await sleep(options.pollMs);
  }
}
