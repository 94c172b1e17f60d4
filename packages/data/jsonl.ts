/**
 * Streaming JSONL: one JSON value per line, blank lines ignored, every error
 * naming the file and the line.
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";
import { readLines } from "./lines.ts";

/** A parsed JSONL line with where it came from. */
export interface JsonlRecord {
  /** The parsed JSON value. */
  value: unknown;
  /** 1-based line number in the file. */
  line: number;
}

/** Options of the JSONL reader. */
export interface JsonlOptions {
  /** Record malformed lines here instead of throwing on the first one. */
  skip?: SkipLog;
}

/**
 * Yields each JSON value of a JSONL file with its line number. A malformed
 * line throws an {@link InputError} (or is counted in `options.skip`).
 */
export async function* readJsonl(
  path: string,
  options: JsonlOptions = {},
): AsyncGenerator<JsonlRecord> {
  const skip = options.skip ?? new SkipLog(false);
  for await (const { text, line } of readLines(path)) {
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      skip.report(new InputError({ file: path, line }, `malformed JSON: ${why}`));
      continue;
    }
    yield { value, line };
  }
}

/** Writes values as JSONL (one `JSON.stringify` per line). */
export async function writeJsonl(path: string, values: Iterable<unknown>): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const writer = file.writable.getWriter();
  const encoder = new TextEncoder();
  let count = 0;
  let buffer = "";
  try {
    for (const value of values) {
      buffer += JSON.stringify(value) + "\n";
      count++;
      if (buffer.length > 1 << 20) {
        await writer.write(encoder.encode(buffer));
        buffer = "";
      }
    }
    if (buffer.length > 0) await writer.write(encoder.encode(buffer));
  } finally {
    await writer.close();
  }
  return count;
}
