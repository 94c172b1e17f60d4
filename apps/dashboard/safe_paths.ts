/**
 * Run-name validation and path resolution confined to the runs directory.
 *
 * Every file the dashboard reads goes through {@linkcode resolveInside}: the
 * real path (symlinks resolved) must lie inside the real runs directory, so
 * neither `..`, absolute paths nor symlinks can reach other files.
 *
 * @module
 */

import { isAbsolute, join, sep as SEPARATOR } from "node:path";
import { HttpError } from "./http_error.ts";

/**
 * Allowed run names: a letter, digit or `_` first, then letters, digits,
 * `.`, `_` and `-`, at most 128 characters, and no `..` anywhere.
 */
export const RUN_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Whether `name` is an acceptable run name (see {@linkcode RUN_NAME_PATTERN}). */
export function isValidRunName(name: string): boolean {
  return RUN_NAME_PATTERN.test(name) && !name.includes("..");
}

/** Throws a 400 {@linkcode HttpError} unless `name` is a valid run name. */
export function assertRunName(name: string): void {
  if (!isValidRunName(name)) {
    throw new HttpError(
      400,
      `invalid run name ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-" ` +
        `(first a letter, digit or "_"; no ".."; at most 128 characters)`,
    );
  }
}

/** Throws a 400 {@linkcode HttpError} unless `segment` is one plain path component. */
function assertSegment(segment: string): void {
  if (
    segment === "" || segment === "." || segment === ".." || segment.includes("/") ||
    segment.includes("\\") || segment.includes("\0") || isAbsolute(segment)
  ) {
    throw new HttpError(400, `invalid path component ${JSON.stringify(segment)}`);
  }
}

/** Real path of the runs directory, or `null` when it does not exist. */
export async function realRoot(root: string): Promise<string | null> {
  try {
    return await Deno.realPath(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Whether the real path `real` is `rootReal` itself or lies below it. */
export function isInside(rootReal: string, real: string): boolean {
  return real === rootReal ||
    real.startsWith(rootReal.endsWith(SEPARATOR) ? rootReal : rootReal + SEPARATOR);
}

/**
 * Resolves `segments` (each one plain path component) below `root` and
 * returns the real path, or `null` when nothing exists there.
 *
 * Throws 400 for a bad component and 403 when the real path (after
 * following symlinks) leaves the real runs directory.
 */
export async function resolveInsideOrNull(
  root: string,
  segments: readonly string[],
): Promise<string | null> {
  for (const segment of segments) assertSegment(segment);
  const rootReal = await realRoot(root);
  if (rootReal === null) return null;
  let real: string;
  try {
    real = await Deno.realPath(join(rootReal, ...segments));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw error;
  }
  if (!isInside(rootReal, real)) {
    throw new HttpError(403, `${segments.join("/")} points outside the runs directory`);
  }
  return real;
}

/**
 * Like {@linkcode resolveInsideOrNull} but answers 404 (naming `what`) when
 * nothing exists there.
 */
export async function resolveInside(
  root: string,
  segments: readonly string[],
  what = segments.join("/"),
): Promise<string> {
  const real = await resolveInsideOrNull(root, segments);
  if (real === null) throw new HttpError(404, `${what} not found`);
  return real;
}

/**
 * Resolves the directory of run `name`: 400 for a bad name, 404 when there
 * is no such directory, 403 when it is a symlink leading outside.
 */
export async function resolveRunDir(root: string, name: string): Promise<string> {
  assertRunName(name);
  const real = await resolveInside(root, [name], `run ${JSON.stringify(name)}`);
  const info = await Deno.stat(real);
  if (!info.isDirectory) throw new HttpError(404, `run ${JSON.stringify(name)} not found`);
  return real;
}
