/**
 * Test helpers: run a script under `mpiexec -np N` and read what each rank
 * reported; `mpiTest` skips (with the reason) when MPI is not installed.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { mpiAvailable } from "./mpi.ts";
import { findMpiexec } from "./launch.ts";

/** Why MPI tests cannot run here, or null when they can. */
export function mpiSkipReason(): string | null {
  if (!mpiAvailable()) return "no MPICH library (apt-get install mpich)";
  if (!findMpiexec()) return "no mpiexec on PATH (apt-get install mpich)";
  return null;
}

const reason = mpiSkipReason();
if (reason) console.warn(`skipping MPI tests: ${reason}`);

/** Registers a test that launches MPI jobs; skipped when MPI is missing. */
export function mpiTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: reason !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}

/** Path of a script in `testdata/`. */
export function testdataScript(name: string): string {
  return fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));
}

/** What {@link runRanks} returns. */
export interface RanksOutcome {
  /** Exit code of the launcher. */
  code: number;
  /** Everything the ranks printed. */
  stdout: string;
  /** Everything the ranks printed on stderr. */
  stderr: string;
  /** `RESULT <json>` lines, by the `rank` field of each. */
  results: Map<number, Record<string, unknown>>;
  /** Wall-clock seconds. */
  seconds: number;
}

/**
 * Runs `deno run -A script ...args` in one process without MPI (a user's plain
 * `deno task train`) and collects its `RESULT {json}` line as rank 0's.
 */
export async function runSingle(script: string, args: string[] = []): Promise<RanksOutcome> {
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout);
  const results = new Map<number, Record<string, unknown>>();
  for (const line of stdout.split("\n")) {
    if (line.startsWith("RESULT ")) results.set(0, JSON.parse(line.slice(7)));
  }
  return {
    code: output.code,
    stdout,
    stderr: decoder.decode(output.stderr),
    results,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Runs `deno run -A script ...args` on `np` ranks with `mpiexec` and
 * collects the `RESULT {json}` lines the ranks print.
 */
export async function runRanks(
  np: number,
  script: string,
  args: string[] = [],
  options: { env?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<RanksOutcome> {
  const started = performance.now();
  const output = await new Deno.Command(findMpiexec()!, {
    args: ["-np", String(np), Deno.execPath(), "run", "-A", script, ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", ...options.env },
    stdout: "piped",
    stderr: "piped",
    signal: options.signal,
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout), stderr = decoder.decode(output.stderr);
  const results = new Map<number, Record<string, unknown>>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("RESULT ")) continue;
    const value = JSON.parse(line.slice(7)) as Record<string, unknown>;
    results.set(value.rank as number, value);
  }
  return {
    code: output.code,
    stdout,
    stderr,
    results,
    seconds: (performance.now() - started) / 1000,
  };
}
