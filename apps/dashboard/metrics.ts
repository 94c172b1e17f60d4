/**
 * Incremental reading of `metrics.jsonl` while training appends to it.
 *
 * A cursor `<bytes>:<lines>` marks how far a reader has got: the byte offset
 * of the next unread line and the number of lines before it (so malformed
 * lines can be reported with their 1-based line number). Only complete,
 * newline-terminated lines are consumed; a last line without its newline is
 * reported as `pending` and read again next time, unless the run has ended
 * (`final`), in which case it is the file's last line and parsed as such.
 *
 * @module
 */

import { HttpError } from "./http_error.ts";

/** Position in a metrics file: byte offset of the next line and lines before it. */
export interface MetricsCursor {
  /** Byte offset of the first unread line. */
  bytes: number;
  /** Number of lines before `bytes` (the next line is line `lines + 1`). */
  lines: number;
}

/** One metrics record: `step`, optional `time`, and numeric metrics. */
export type MetricRecord = { step: number; time?: string } & Record<string, unknown>;

/** A line that is not a valid metrics record. */
export interface MalformedLine {
  /** 1-based line number in `metrics.jsonl`. */
  line: number;
  /** The line's text (cut to 500 characters). */
  text: string;
  /** Why it was rejected. */
  error: string;
}

/** An incomplete last line (no newline yet): training is still writing it. */
export interface PendingLine {
  /** 1-based line number it will have. */
  line: number;
  /** Bytes written so far. */
  bytes: number;
}

/** What one read returns. */
export interface MetricsChunk {
  /** Valid records, in file order. */
  metrics: MetricRecord[];
  /** Lines that could not be used, in file order. */
  malformed: MalformedLine[];
  /** Cursor to pass as `since` next time. */
  next: string;
  /** The incomplete last line, if any. */
  pending: PendingLine | null;
  /** `true` when the file is shorter than the cursor (rewritten): reading restarted at 0. */
  reset: boolean;
  /** `true` when the read stopped at `maxBytes` and more complete lines follow. */
  more: boolean;
}

/** Options for {@linkcode readMetrics}. */
export interface ReadMetricsOptions {
  /** The run has ended: an unterminated last line is complete, not pending. */
  final?: boolean;
  /** Stop after about this many bytes (at a line end); default 8 MiB. */
  maxBytes?: number;
}

const MAX_TEXT = 500;
const NEWLINE = 0x0a;

/** Formats a cursor as `<bytes>:<lines>`. */
export function formatCursor(cursor: MetricsCursor): string {
  return `${cursor.bytes}:${cursor.lines}`;
}

/**
 * Parses a `since` value: empty or absent means the start, `<bytes>:<lines>`
 * is a cursor from a previous read, and a plain `<bytes>` is a byte offset
 * whose line count is recomputed (`lines` is then `-1`). Throws a 400
 * {@linkcode HttpError} for anything else.
 */
export function parseCursor(text: string | undefined | null): MetricsCursor {
  if (text === undefined || text === null || text === "") return { bytes: 0, lines: 0 };
  const match = /^(\d{1,15})(?::(\d{1,15}))?$/.exec(text);
  if (!match) {
    throw new HttpError(
      400,
      `invalid cursor ${JSON.stringify(text)}: expected "<bytes>:<lines>" or "<bytes>"`,
    );
  }
  const bytes = Number(match[1]);
  const lines = match[2] === undefined ? -1 : Number(match[2]);
  if (bytes === 0 && lines > 0) {
    throw new HttpError(400, `invalid cursor ${JSON.stringify(text)}: 0 bytes hold no lines`);
  }
  return { bytes, lines };
}

/**
 * Validates one line of `metrics.jsonl`. Returns the record or throws an
 * `Error` whose message names the offending field.
 */
export function parseMetricLine(text: string): MetricRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(
      `expected a JSON object, got ${Array.isArray(value) ? "an array" : typeof value}`,
    );
  }
  const record = value as Record<string, unknown>;
  const step = record.step;
  if (typeof step !== "number" || !Number.isInteger(step) || step < 0) {
    throw new Error(
      `field "step": expected a non-negative integer, got ${JSON.stringify(step) ?? "nothing"}`,
    );
  }
  if ("time" in record && typeof record.time !== "string") {
    throw new Error(
      `field "time": expected an ISO-8601 string, got ${JSON.stringify(record.time)}`,
    );
  }
  for (const [key, field] of Object.entries(record)) {
    if (key === "step" || key === "time") continue;
    if (field !== null && typeof field !== "number") {
      throw new Error(`field "${key}": expected a number or null, got ${JSON.stringify(field)}`);
    }
  }
  return record as MetricRecord;
}

/** Reads from `file` at `position` until `buffer` is full or the end. */
async function readFully(file: Deno.FsFile, position: number, buffer: Uint8Array): Promise<number> {
  await file.seek(position, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Counts newlines in the first `bytes` bytes of `file`. */
async function countLines(file: Deno.FsFile, bytes: number): Promise<number> {
  const block = new Uint8Array(1 << 20);
  let lines = 0;
  for (let position = 0; position < bytes;) {
    const n = await readFully(
      file,
      position,
      block.subarray(0, Math.min(block.length, bytes - position)),
    );
    if (n === 0) break;
    for (let i = 0; i < n; i++) if (block[i] === NEWLINE) lines++;
    position += n;
  }
  return lines;
}

/**
 * Reads the complete lines of the metrics file at `path` after `cursor`.
 * A missing file reads as empty. Never throws for bad content: bad lines
 * come back in `malformed`. Throws a 400 {@linkcode HttpError} when the
 * cursor is not at a line boundary.
 */
export async function readMetrics(
  path: string | null,
  cursor: MetricsCursor,
  options: ReadMetricsOptions = {},
): Promise<MetricsChunk> {
  const empty = (next: MetricsCursor, reset: boolean): MetricsChunk => ({
    metrics: [],
    malformed: [],
    next: formatCursor(next),
    pending: null,
    reset,
    more: false,
  });
  if (path === null) return empty({ bytes: 0, lines: 0 }, cursor.bytes > 0);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return empty({ bytes: 0, lines: 0 }, cursor.bytes > 0);
    }
    throw error;
  }
  try {
    const size = (await file.stat()).size;
    let reset = false;
    let start = cursor;
    if (start.bytes > size) {
      // The file was rewritten (e.g. the run restarted): read it again from the top.
      start = { bytes: 0, lines: 0 };
      reset = true;
    }
    if (start.bytes > 0) {
      const before = new Uint8Array(1);
      await readFully(file, start.bytes - 1, before);
      if (before[0] !== NEWLINE) {
        throw new HttpError(400, `invalid cursor: byte ${start.bytes} is not the start of a line`);
      }
    }
    if (start.lines < 0) start = { bytes: start.bytes, lines: await countLines(file, start.bytes) };

    const maxBytes = options.maxBytes ?? 8 << 20;
    // Read whole blocks until the limit is passed at a line end, or the file ends.
    const blocks: Uint8Array[] = [];
    let total = 0;
    let lastNewline = -1; // offset (from start) of the last newline seen
    let position = start.bytes;
    while (position < size) {
      const block = new Uint8Array(Math.min(1 << 20, Math.max(1, maxBytes), size - position));
      const n = await readFully(file, position, block);
      if (n === 0) break;
      const got = block.subarray(0, n);
      const index = got.lastIndexOf(NEWLINE);
      if (index >= 0) lastNewline = total + index;
      blocks.push(got);
      total += n;
      position += n;
      if (total >= maxBytes && lastNewline >= 0) break;
    }
    const data = new Uint8Array(total);
    let offset = 0;
    for (const block of blocks) {
      data.set(block, offset);
      offset += block.length;
    }
    const more = position < size;
    const complete = data.subarray(0, lastNewline + 1);
    const rest = data.subarray(lastNewline + 1);
    const decoder = new TextDecoder();
    const texts = complete.length > 0 ? decoder.decode(complete).split("\n").slice(0, -1) : [];
    let consumed = complete.length;
    let pending: PendingLine | null = null;
    if (rest.length > 0 && !more) {
      if (options.final) {
        texts.push(decoder.decode(rest));
        consumed += rest.length;
      } else {
        pending = { line: start.lines + texts.length + 1, bytes: rest.length };
      }
    }

    const metrics: MetricRecord[] = [];
    const malformed: MalformedLine[] = [];
    let line = start.lines;
    for (const raw of texts) {
      line++;
      const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (text.trim() === "") continue;
      try {
        metrics.push(parseMetricLine(text));
      } catch (error) {
        malformed.push({
          line,
          text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text,
          error: (error as Error).message,
        });
      }
    }
    return {
      metrics,
      malformed,
      next: formatCursor({ bytes: start.bytes + consumed, lines: line }),
      pending,
      reset,
      more,
    };
  } finally {
    file.close();
  }
}
