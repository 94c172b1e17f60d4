/**
 * Shared CLI behaviour: bad input ends with one clear sentence on stderr and
 * a non-zero exit, never a stack trace.
 *
 * @module
 */

import { InputError } from "@irforge/data/input-error";
import { OutputError } from "@irforge/data/safe-output";
import { MeasureSpecError } from "../measure_spec.ts";

/** A mistake in the command line itself (unknown flag, missing value). */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Describes an error thrown while reading user files as one sentence. */
export function describeError(error: unknown): string | undefined {
  if (error instanceof InputError || error instanceof UsageError) return error.message;
  if (error instanceof OutputError) return error.message;
  if (error instanceof MeasureSpecError) return error.message;
  if (error instanceof Deno.errors.NotFound) {
    return error.message.replace(/^No such file or directory \(os error 2\): /, "file not found: ");
  }
  if (error instanceof Deno.errors.PermissionDenied) return error.message;
  if (error instanceof Deno.errors.IsADirectory) return error.message;
  if (error instanceof TypeError && /(argument|option)/i.test(error.message)) return error.message;
  return undefined;
}

/** Throws a {@link UsageError} unless `path` is a readable file. */
export async function requireFile(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new UsageError(`${what} "${path}" does not exist`);
  }
  if (!info.isFile) throw new UsageError(`${what} "${path}" is not a file`);
}

/** Runs `main`, turning expected errors into `error: …` and exit code 1. */
export async function runCli(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = describeError(error);
    if (message === undefined) throw error;
    console.error(`${name}: error: ${message}`);
    Deno.exit(1);
  }
}
