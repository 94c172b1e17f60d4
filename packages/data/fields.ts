/**
 * Typed access to fields of parsed JSON records, throwing an
 * {@link InputError} that names file, line and field on a missing or
 * mistyped value.
 *
 * @module
 */

import { InputError, type InputLocation } from "./input_error.ts";

/** Where a record came from: file and line, the field is added per access. */
export interface RecordLocation {
  /** File the record was read from. */
  file: string;
  /** 1-based line (JSONL), when known. */
  line?: number;
  /** Path of the enclosing value (`[3].hits[5]`), prefixed to field names. */
  prefix?: string;
}

/** The {@link InputLocation} of `field` inside a record at `where`. */
export function fieldLocation(where: RecordLocation, field?: string): InputLocation {
  const path = field === undefined
    ? where.prefix
    : where.prefix
    ? `${where.prefix}.${field}`
    : field;
  return { file: where.file, line: where.line, field: path || undefined };
}

/** Throws unless `value` is a plain object; returns it typed as a record. */
export function asObject(
  value: unknown,
  where: RecordLocation,
  field?: string,
): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InputError(
      fieldLocation(where, field),
      `expected a JSON object, found ${describe(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

/** Throws unless `value` is an array. */
export function asArray(value: unknown, where: RecordLocation, field?: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new InputError(
      fieldLocation(where, field),
      `expected a JSON array, found ${describe(value)}`,
    );
  }
  return value;
}

/** Options of {@link stringField}. */
export interface StringFieldOptions {
  /** Accept an absent field and return this instead. */
  fallback?: string;
  /** Reject strings that are empty after trimming. */
  nonEmpty?: boolean;
  /** Accept a JSON number and convert it (ids are often numeric). */
  numberAllowed?: boolean;
}

/** Reads a string field, converting numbers when allowed. */
export function stringField(
  record: Record<string, unknown>,
  field: string,
  where: RecordLocation,
  options: StringFieldOptions = {},
): string {
  const location = fieldLocation(where, field);
  const value = record[field];
  if (value === undefined || value === null) {
    if (options.fallback !== undefined) return options.fallback;
    throw new InputError(location, "missing field");
  }
  let text: string;
  if (typeof value === "string") text = value;
  else if (typeof value === "number" && options.numberAllowed) text = String(value);
  else throw new InputError(location, `expected a string, found ${describe(value)}`);
  if (options.nonEmpty && text.trim() === "") throw new InputError(location, "is empty");
  return text;
}

/** Reads a finite number field. */
export function numberField(
  record: Record<string, unknown>,
  field: string,
  where: RecordLocation,
  fallback?: number,
): number {
  const value = record[field];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new InputError(fieldLocation(where, field), "missing field");
  }
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InputError(
      fieldLocation(where, field),
      `expected a number, found ${describe(value)}`,
    );
  }
  return value;
}

/** A short description of a JSON value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return value.length > 30 ? `the string "${value.slice(0, 30)}…"` : `the string "${value}"`;
  }
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}
