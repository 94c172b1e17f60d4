/**
 * One sentence for a run directory the file system refuses to create (a
 * path through a regular file, a read-only or full file system, no
 * permission, a virtual file system like `/proc`), instead of the raw
 * `mkdir` error and its stack trace.
 *
 * @example
 * ```ts
 * import { outputDirError } from "@irforge/trainer";
 *
 * try {
 *   await Deno.mkdir("/proc/my-run", { recursive: true });
 * } catch (error) {
 *   throw await outputDirError("/proc/my-run", error);
 * }
 * ```
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { InputError } from "@irforge/data/input-error";

/** The first existing ancestor of `path` (or `path` itself) that is not a directory. */
async function fileOnPath(path: string): Promise<string | null> {
  const chain: string[] = [];
  for (let p = resolve(path);; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of chain) {
    try {
      if (!(await Deno.stat(p)).isDirectory) return p;
    } catch {
      return null; // the rest of the path does not exist yet
    }
  }
  return null;
}

/**
 * An {@link InputError} naming `path` and why it cannot be created, for a
 * file-system refusal (an error with an OS error code); `error` unchanged
 * otherwise, so that bugs keep their stack trace.
 */
export async function outputDirError(path: string, error: unknown): Promise<unknown> {
  if (!(error instanceof Error) || !/\(os error \d+\)/.test(error.message)) return error;
  const file = await fileOnPath(path);
  let reason: string;
  if (file !== null) reason = `${file} is a file, not a directory`;
  else if (/\(os error 30\)/.test(error.message)) reason = "the file system is read-only";
  else if (/\(os error 28\)/.test(error.message)) reason = "the disk is full";
  else if (error instanceof Deno.errors.PermissionDenied) reason = "permission denied";
  else reason = error.message.replace(/: \w+ '.*'$/, ""); // the OS's words, minus the call
  return new InputError(
    { file: path },
    `cannot create the run directory: ${reason} (choose another training.output_dir)`,
  );
}
