/**
 * Errors for bad user input: every message names the file, the line and the
 * field so that the user can fix the data without guessing.
 *
 * @module
 */

/** Where in a user's file a problem was found. */
export interface InputLocation {
  /** Path of the file as the user gave it. */
  file: string;
  /** 1-based line number, when the format is line oriented. */
  line?: number;
  /** Name of the field (JSON key, column) that is wrong. */
  field?: string;
}

/** An error in user-supplied input, carrying its location. */
export class InputError extends Error {
  /** Location of the problem. */
  readonly location: InputLocation;

  /** Creates an error whose message starts with `file:line: field:`. */
  constructor(location: InputLocation, problem: string) {
    super(`${formatLocation(location)}: ${problem}`);
    this.name = "InputError";
    this.location = location;
  }
}

/** Formats a location as `file:line (field "x")`. */
export function formatLocation(location: InputLocation): string {
  let text = location.file;
  if (location.line !== undefined) text += `:${location.line}`;
  if (location.field !== undefined) text += ` (field "${location.field}")`;
  return text;
}

/**
 * Collects problems when the user asked to skip bad records: each one is
 * counted and reported at the end, so nothing is dropped silently.
 */
export class SkipLog {
  /** Problems seen so far, in order. */
  readonly problems: InputError[] = [];

  /** `true` when bad records are skipped, `false` when the first one throws. */
  constructor(readonly skip: boolean) {}

  /** Throws `error` unless skipping, in which case it is recorded. */
  report(error: InputError): void {
    if (!this.skip) throw error;
    this.problems.push(error);
  }

  /** A one-paragraph summary for the end of a run ("" when clean). */
  summary(): string {
    if (this.problems.length === 0) return "";
    const shown = this.problems.slice(0, 5).map((p) => `  ${p.message}`).join("\n");
    const more = this.problems.length > 5 ? `\n  … and ${this.problems.length - 5} more` : "";
    return `warning: skipped ${this.problems.length} bad record(s):\n${shown}${more}`;
  }
}
