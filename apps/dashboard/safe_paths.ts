/**
 * Run-name validation and path resolution confined to the runs directory.
 *
 * Every file the dashboard reads goes through {@linkcode resolveInside}: the
 * real path (symlinks resolved) must lie inside the real runs directory, so
 * neither `..`, absolute paths nor symlinks can reach other files.
 *
 * A run id is a run name (`blockrank-dl19`) or, for a run nested one level
 * down such as a distill phase, two names joined by one `/`
 * (`distill-x/phase1`). Each part is checked on its own, so an id never
 * holds `..`, an empty part or an absolute path.
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

/**
 * Names a nested run cannot have: they are the sub-resources of
 * `/api/runs/<id>/…` (and `checkpoints`, `eval` are parts of every run), so
 * `/api/runs/a/eval` always means the evaluations of run `a`.
 */
export const RESERVED_CHILD_NAMES: ReadonlySet<string> = new Set([
  "metrics",
  "config",
  "checkpoints",
  "eval",
  "events",
]);

/** Most parts a run id has: a top-level run and one nested level. */
export const MAX_RUN_ID_PARTS = 2;

/**
 * Whether `id` is an acceptable run id: one or two valid run names joined
 * by `/`, the second not one of {@linkcode RESERVED_CHILD_NAMES}.
 */
export function isValidRunId(id: string): boolean {
  const parts = id.split("/");
  return parts.length <= MAX_RUN_ID_PARTS && parts.every(isValidRunName) &&
    parts.slice(1).every((part) => !RESERVED_CHILD_NAMES.has(part));
}

/** Throws a 400 {@linkcode HttpError} unless `id` is a valid run id. */
export function assertRunId(id: string): void {
  if (!id.includes("/")) return assertRunName(id);
  if (!isValidRunId(id)) {
    throw new HttpError(
      400,
      `invalid run name ${JSON.stringify(id)}: a nested run is "<run>/<name>", both parts ` +
        `valid run names, the second not ${[...RESERVED_CHILD_NAMES].join(", ")}`,
    );
  }
}

/** The path components of run `id` below the runs directory (400 for a bad id). */
export function runSegments(id: string): string[] {
  assertRunId(id);
  return id.split("/");
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

/** The files whose presence makes a directory a run (`docs/run-layout.md`). */
export const RUN_FILES: readonly string[] = ["run.json", "metrics.jsonl", "config.yaml"];

/**
 * Whether the directory `dir` (a real path) holds any of
 * {@linkcode RUN_FILES}. Only looks at the entries (`lstat`): a symlinked
 * file counts, but is not followed here.
 */
export async function holdsRunFiles(dir: string): Promise<boolean> {
  for (const file of RUN_FILES) {
    try {
      await Deno.lstat(join(dir, file));
      return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return false;
}

/**
 * Resolves the directory of run `id` (`name` or `parent/name`): 400 for a
 * bad id, 404 when there is no such directory (or, for a nested id, when
 * it holds no run files), 403 when it or its parent is a symlink leading
 * outside.
 */
export async function resolveRunDir(root: string, id: string): Promise<string> {
  const segments = runSegments(id);
  const real = await resolveInside(root, segments, `run ${JSON.stringify(id)}`);
  const info = await Deno.stat(real);
  if (!info.isDirectory || (segments.length > 1 && !(await holdsRunFiles(real)))) {
    throw new HttpError(404, `run ${JSON.stringify(id)} not found`);
  }
  return real;
}
