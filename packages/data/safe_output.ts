/**
 * Writing a command's output without ever losing what the user had: the
 * output is checked against the inputs and against what already exists
 * (replaced only with `--force`), written under a temporary name next to it,
 * and renamed into place only once complete. A failed or interrupted write
 * never leaves a half-written file under the final name, and errors (disk
 * full, read-only file system) are one sentence naming the path.
 *
 * Every CLI that writes a file or a directory uses these three functions:
 *
 * ```ts
 * import { checkOutput, writeDirectoryAtomic, writeFileAtomic } from "@irforge/data/safe-output";
 *
 * const dir = await Deno.makeTempDir();
 * // refuses an output that is one of the inputs, or exists (unless force)
 * await checkOutput(`${dir}/run.txt`, { flag: "--out", inputs: [{ flag: "--corpus", path: `${dir}/c.jsonl` }] });
 * await writeFileAtomic(`${dir}/run.txt`, "q1 Q0 d1 1 2.5 bm25\n");
 * await writeDirectoryAtomic(`${dir}/model`, async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/config.json`, "{}");
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";

/** An output that may not be written, or a write that failed; the message is one sentence. */
export class OutputError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "OutputError";
  }
}

/** One input of a command, for {@link checkOutput}. */
export interface NamedPath {
  /** The command-line flag that gave it, e.g. `--base`. */
  flag: string;
  /** The path as the user gave it. */
  path: string;
}

/** Options of {@link checkOutput}. */
export interface CheckOutputOptions {
  /** The output's flag, for messages (default `--out`). */
  flag?: string;
  /** The command's inputs: the output may be none of them, nor contain one. */
  inputs?: readonly NamedPath[];
  /** Allow replacing an existing output (`--force`); never allows overwriting an input. */
  force?: boolean;
}

/** The canonical form of `path`: symlinks resolved for the part that exists. */
function canonical(path: string): string {
  const absolute = resolve(path);
  try {
    return Deno.realPathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(canonical(parent), basename(absolute));
  }
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith("/") ? parent : parent + "/");
}

/**
 * Throws an {@link OutputError} when `out` is one of `inputs` (or a directory
 * holding one, which replacing it would delete), or when `out` exists and is
 * not an empty directory, unless `force`.
 */
export async function checkOutput(out: string, options: CheckOutputOptions = {}): Promise<void> {
  const flag = options.flag ?? "--out";
  const target = canonical(out);
  for (const input of options.inputs ?? []) {
    const source = canonical(input.path);
    if (target === source) {
      throw new OutputError(
        `${flag} ${out} is the same path as ${input.flag} ${input.path}; ` +
          `choose another output so the input is not overwritten`,
      );
    }
    if (isInside(source, target)) {
      throw new OutputError(
        `${flag} ${out} contains ${input.flag} ${input.path}; ` +
          `choose an output outside the inputs so they are not overwritten`,
      );
    }
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(out);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new OutputError(`cannot use ${flag} ${out}: ${(error as Error).message}`);
  }
  if (info.isDirectory) {
    let empty = true;
    for await (const _ of Deno.readDir(out)) {
      empty = false;
      break;
    }
    if (empty) return;
  }
  if (!options.force) {
    throw new OutputError(
      `${flag} ${out} already exists (a ${info.isDirectory ? "non-empty directory" : "file"}); ` +
        `pass --force to replace it or choose another path`,
    );
  }
}

/** Temporary sibling of `path` that a crash leaves recognisably (`.name.tmp-<pid>-<n>`). */
let counter = 0;
function temporarySibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}-${counter++}`);
}

function writeFailure(path: string, error: unknown): OutputError {
  if (error instanceof OutputError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new OutputError(`cannot write ${path}: ${reason}`);
}

/**
 * Writes `data` to a temporary file next to `path` and renames it over
 * `path` when complete. On failure the temporary file is removed and an
 * {@link OutputError} names `path`.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = temporarySibling(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw writeFailure(path, error);
  }
}

/**
 * Builds a directory under a temporary name next to `out` (`fill` receives
 * its path) and moves it to `out` when `fill` succeeds, replacing a previous
 * `out` only then (callers check with {@link checkOutput} first). On failure
 * the temporary directory is removed and `out` is as it was.
 */
export async function writeDirectoryAtomic<T>(
  out: string,
  fill: (tmp: string) => Promise<T>,
): Promise<T> {
  const parent = dirname(resolve(out));
  try {
    await Deno.mkdir(parent, { recursive: true });
  } catch (error) {
    throw writeFailure(out, error);
  }
  const tmp = temporarySibling(resolve(out));
  let result: T;
  try {
    await Deno.mkdir(tmp);
    result = await fill(tmp);
  } catch (error) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (error instanceof Deno.errors.NotFound || error instanceof OutputError) throw error;
    if (isWriteError(error)) throw writeFailure(out, error);
    throw error;
  }
  const old = temporarySibling(resolve(out));
  let moved = false;
  try {
    try {
      await Deno.rename(out, old);
      moved = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.rename(tmp, out);
  } catch (error) {
    if (moved) await Deno.rename(old, out).catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw writeFailure(out, error);
  }
  if (moved) await Deno.remove(old, { recursive: true }).catch(() => {});
  return result;
}

/** Errors of the file system while writing (no space, read-only, permission). */
function isWriteError(error: unknown): boolean {
  if (error instanceof Deno.errors.PermissionDenied) return true;
  const message = error instanceof Error ? error.message : "";
  return /os error (28|30|122)\)/.test(message);
}
