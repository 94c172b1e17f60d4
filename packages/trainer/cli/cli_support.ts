/**
 * What the inference commands (`rerank`, `encode`, `search`, `mine`) share:
 * flag parsing helpers, a progress line with rate and ETA, and one error
 * sentence (never a stack trace) for bad input.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { describeNoGpu } from "@irforge/tensor";
import { InputError } from "@irforge/data/input-error";
import { CheckpointError } from "@irforge/model/safetensors";
import { ConfigError } from "../config/parse.ts";

/** A mistake in the command line itself (missing flag, bad number). */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The parsed flags of a command with `options`. */
export type CommandValues<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O }>
>["values"];

/**
 * Parses a command's flags: a bad flag is a {@link UsageError} followed by
 * `usage`; `--help` prints `usage` and gives `undefined`; a missing (or
 * empty) `required` flag is one sentence naming all of them.
 */
export function parseCommand<
  const O extends ParseArgsOptionsConfig,
  const R extends keyof O & string,
>(
  options: O,
  usage: string,
  required: readonly R[],
  args: string[] = Deno.args,
): (CommandValues<O> & { [K in R]: string }) | undefined {
  let values: CommandValues<O>;
  try {
    values = parseArgs({ args, options }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : error}\n${usage}`);
  }
  const read = values as Record<string, unknown>;
  if (read.help) {
    console.log(usage);
    return undefined;
  }
  if (required.some((flag) => !read[flag])) {
    const names = required.map((flag) => `--${flag}`);
    const list = names.length > 1
      ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`
      : names[0];
    throw new UsageError(`${list} ${names.length > 1 ? "are" : "is"} required\n${usage}`);
  }
  return values as CommandValues<O> & { [K in R]: string };
}

/** `--flag` as a positive integer, or `fallback` when absent. */
export function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value <= 0) {
    throw new UsageError(`${flag} expects a positive integer, got "${text}"`);
  }
  return value;
}

/** `--flag` as a non-negative integer, or `fallback` when absent. */
export function nonNegativeInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < 0) {
    throw new UsageError(`${flag} expects a non-negative integer, got "${text}"`);
  }
  return value;
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

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

/**
 * A progress reporter for items of `unit`: one stderr line, rewritten at
 * most every half second, with the rate since it was made (counting from
 * `resumedFrom` done items, for a resumed job) and an ETA.
 */
export function progressReporter(
  what: string,
  unit: string,
  resumedFrom = 0,
  write: (text: string) => void = (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
): (done: number, total: number) => void {
  const started = performance.now();
  let last = -Infinity;
  return (done, total) => {
    const now = performance.now();
    if (done < total && now - last < 500) return;
    last = now;
    const seconds = (now - started) / 1000;
    const rate = seconds > 0 ? (done - resumedFrom) / seconds : 0;
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const line = `\r${what}: ${done}/${total} ${unit} (${rate.toFixed(1)} ${unit}/s, ` +
      `${done === total ? `took ${formatSeconds(seconds)}` : `ETA ${formatSeconds(eta)}`})`;
    write(done === total ? `${line}\n` : line);
  };
}

/** The error's one-sentence description, or `undefined` for a bug (stack trace wanted). */
export function describeCliError(error: unknown): string | undefined {
  const gpu = describeNoGpu(error);
  if (gpu) return gpu;
  if (
    error instanceof InputError || error instanceof UsageError || error instanceof ConfigError ||
    error instanceof CheckpointError
  ) return error.message;
  if (error instanceof Deno.errors.NotFound) {
    return error.message.replace(/^No such file or directory \(os error 2\): /, "file not found: ");
  }
  if (error instanceof Deno.errors.PermissionDenied) return error.message;
  if (error instanceof Error) return error.message;
  return undefined;
}

/** Runs `main`, turning errors into `<name>: error: …` on stderr and exit code 1. */
export async function runCli(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = describeCliError(error);
    if (message === undefined) throw error;
    console.error(`${name}: error: ${message}`);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}
