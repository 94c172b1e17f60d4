/**
 * What every benchmark suite prints and saves: the environment header (date,
 * adapter, Deno version), a results file `bench/results/<suite>-<date>.json`
 * that `bench/compare.ts` reads, and the `--full` / `--shape` choice between
 * tiny shapes (CPU adapters such as lavapipe) and the issue's full shapes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { currentDevice, type DeviceFacts, deviceFacts } from "@irforge/tensor";

/** Which shapes a suite runs. */
export type ShapeChoice = "tiny" | "full";

/** Options every suite understands. */
export interface SuiteArgs {
  /** Shapes to run: `--shape tiny|full`, `--full`, else by adapter. */
  shape: ShapeChoice;
  /** Timed repetitions (median reported). */
  reps: number;
  /** Untimed warm-up repetitions. */
  warmup: number;
  /** Suite-specific flags not consumed here. */
  values: Record<string, string | boolean | undefined>;
}

/**
 * Parses `--full`, `--shape tiny|full`, `--reps N`, `--warmup N` plus the
 * suite's own string options. `isCpuAdapter` picks the default shape.
 *
 * @throws {Error} on an unknown `--shape` or a non-positive count.
 */
export function parseSuiteArgs(
  args: string[],
  isCpuAdapter: boolean,
  extra: Record<string, { type: "string" | "boolean"; default?: string | boolean }> = {},
  defaults: { reps: number; warmup: number } = { reps: 5, warmup: 1 },
): SuiteArgs {
  const { values } = parseArgs({
    args,
    options: {
      full: { type: "boolean", default: false },
      shape: { type: "string" },
      reps: { type: "string", default: String(defaults.reps) },
      warmup: { type: "string", default: String(defaults.warmup) },
      // Read by openDevice (bench/lib/device.ts) before the device exists.
      provider: { type: "string" },
      ...extra,
    },
  });
  const given = values.shape as string | undefined;
  if (given !== undefined && given !== "tiny" && given !== "full") {
    throw new Error(`--shape must be "tiny" or "full", got "${given}"`);
  }
  const shape: ShapeChoice = given as ShapeChoice | undefined ??
    (values.full ? "full" : isCpuAdapter ? "tiny" : "full");
  const count = (name: "reps" | "warmup", min: number) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name} must be an integer ≥ ${min}, got "${values[name]}"`);
    }
    return n;
  };
  return {
    shape,
    reps: count("reps", 1),
    warmup: count("warmup", 0),
    values: values as Record<string, string | boolean | undefined>,
  };
}

/** Where and with what a suite ran; printed first and saved with the rows. */
export interface Environment {
  /** ISO time the suite started. */
  date: string;
  /** Deno version (`Deno.version.deno`). */
  deno: string;
  /** V8 version. */
  v8: string;
  /** OS and architecture. */
  os: string;
  /** Logical CPU cores. */
  cpus: number;
  /** Adapter vendor / architecture / description, when the suite uses WebGPU. */
  adapter?: { vendor: string; architecture: string; description: string };
  /** True on CPU (software) adapters: numbers say nothing about GPU speed. */
  cpuAdapter?: boolean;
  /** Whether `timestamp-query` was offered. */
  timestamps?: boolean;
  /** WebGPU provider (`deno`/`dawn`), adapter, features and subgroup facts of the device. */
  webgpu?: DeviceFacts;
}

/** The environment of this process, with the adapter when given. */
export function environment(
  adapter?: { vendor: string; architecture: string; description: string },
  extra: { cpuAdapter?: boolean; timestamps?: boolean } = {},
): Environment {
  return {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: `${Deno.build.os}-${Deno.build.arch}`,
    cpus: navigator.hardwareConcurrency,
    adapter: adapter && {
      vendor: adapter.vendor,
      architecture: adapter.architecture,
      description: adapter.description,
    },
    ...(adapter ? openedDeviceFacts() : {}),
    ...extra,
  };
}

// The provider of the device the suite opened (none for GPU-free suites).
function openedDeviceFacts(): { webgpu?: DeviceFacts } {
  try {
    return { webgpu: deviceFacts(currentDevice()) };
  } catch {
    return {};
  }
}

/** One line describing `env` for the console. */
export function describeEnvironment(env: Environment): string {
  const adapter = env.adapter
    ? `${env.webgpu ? `webgpu ${env.webgpu.provider} · ` : ""}adapter ${
      env.adapter.description || env.adapter.vendor || "unknown"
    }${env.cpuAdapter ? " (CPU adapter: figures say nothing about GPU speed)" : ""}`
    : "no GPU involved";
  return `${env.date} · Deno ${env.deno} · ${env.os}, ${env.cpus} cores · ${adapter}`;
}

/** A measurement row: free-form fields, numbers unrounded. */
export type Row = Record<string, string | number | boolean | null>;

/** What a suite writes to `bench/results/<suite>-<date>.json`. */
export interface SuiteResult {
  /** Suite name (file stem). */
  suite: string;
  /** Shapes it ran. */
  shape: ShapeChoice;
  /** Where it ran. */
  environment: Environment;
  /** One entry per measurement. */
  rows: Row[];
  /** Suite-specific facts (conventions, configs). */
  notes?: Record<string, unknown>;
}

/** Writes `result` under `dir` (default `bench/results`) and returns the path. */
export async function writeResult(result: SuiteResult, dir = "bench/results"): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const stamp = result.environment.date.replace(/[:.]/g, "-");
  const file = `${dir}/${result.suite}-${stamp}.json`;
  await Deno.writeTextFile(file, JSON.stringify(result, null, 2) + "\n");
  return file;
}

/** Median of `samples` (the mean of the middle two for an even count). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new Error("median of no samples");
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Runs `once` `warmup` times untimed, then `reps` times, each timed from
 * before the call until its returned promise settles (the suite's own GPU
 * sync), and returns every sample in ms.
 */
export async function timeRepeated(
  once: () => Promise<void>,
  reps: number,
  warmup: number,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await once();
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** Bytes as GiB/MiB text. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}

/** Prints `rows` as a console table with numbers rounded for reading. */
export function printRows(rows: Row[]): void {
  console.table(rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [k, typeof v === "number" ? round(v) : v]),
    )
  ));
}

function round(v: number): number | string {
  if (!Number.isFinite(v) || Number.isInteger(v)) return v;
  const a = Math.abs(v);
  return a >= 100 ? Number(v.toFixed(1)) : a >= 1 ? Number(v.toFixed(3)) : Number(v.toPrecision(3));
}
