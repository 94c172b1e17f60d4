/**
 * Reads files holding a list of records either as one JSON array or as
 * JSONL, yielding each record with a location for error messages: the line
 * for JSONL, the array index (as field path `[i]`) for a JSON array.
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";
import { readJsonl } from "./jsonl.ts";
import { fieldLocation, type RecordLocation } from "./fields.ts";

export { fieldLocation };

/** One record and where it came from. */
export interface LocatedRecord {
  /** The parsed value. */
  value: unknown;
  /** File path. */
  file: string;
  /** Line (JSONL only). */
  line?: number;
  /** Field-path prefix: `[i]` for array element i (JSON arrays), `""` for JSONL. */
  path: string;
}

/** Reads all records of a JSON-array or JSONL file (detected by the first non-blank character). */
export async function readJsonRecords(
  file: string,
  skip: SkipLog = new SkipLog(false),
): Promise<LocatedRecord[]> {
  const text = await Deno.readTextFile(file);
  const first = text.trimStart()[0];
  if (first === "[") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new InputError({ file, line: lineOfJsonError(text, why) }, `malformed JSON: ${why}`);
    }
    return (parsed as unknown[]).map((value, i) => ({ value, file, path: `[${i}]` }));
  }
  const out: LocatedRecord[] = [];
  for await (const { value, line } of readJsonl(file, { skip })) {
    out.push({ value, file, line, path: "" });
  }
  return out;
}

/** The record's location for the field helpers (`prefix` = its array path). */
export function recordWhere(record: LocatedRecord, path?: string): RecordLocation {
  const prefix = path === undefined ? record.path : record.path ? `${record.path}.${path}` : path;
  return { file: record.file, line: record.line, prefix: prefix || undefined };
}

/** V8 reports "… at position N" (or "line L column C"): turn it into a line number. */
function lineOfJsonError(text: string, message: string): number | undefined {
  const lineColumn = /line (\d+) column/.exec(message);
  if (lineColumn) return Number(lineColumn[1]);
  const position = /position (\d+)/.exec(message);
  if (!position) return undefined;
  const offset = Number(position[1]);
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
