/**
 * The matmul tuning table: which kernel variant ({@link MatmulVariant}) runs
 * for which shape class, where tables come from (built-in guesses per
 * adapter kind, a JSON file named by `IRFORGE_MATMUL_TUNING`, or an explicit
 * {@link useMatmulTuning} / {@link loadMatmulTuning}), and the JSON format
 * `tuneMatmul` writes.
 *
 * A shape class buckets M (times the batch), N and K by size and records the
 * operand layout and dtypes. Table entries match classes with optional
 * wildcards; the most specific matching entry wins, then the table's
 * `default`.
 *
 * @module
 */

import {
  type MatmulLimits,
  type MatmulVariant,
  variantName,
  variantProblem,
} from "./matmul_kernels.ts";

/** Size bucket of one dimension: xs ≤ 64 < s ≤ 256 < m ≤ 1024 < l ≤ 4096 < xl. */
export type SizeBucket = "xs" | "s" | "m" | "l" | "xl";
/** Operand layout: `n`/`t` for A then B (`nt` is x·Wᵀ). */
export type MatmulLayout = "nn" | "nt" | "tn" | "tt";
/** Operand dtypes: both f32, both f16, or one of each. */
export type MatmulDtypes = "f32" | "f16" | "mixed";

/** The class of a matmul shape a tuning entry applies to. */
export interface MatmulShapeClass {
  /** Layout of the operands. */
  layout: MatmulLayout;
  /** Operand dtypes. */
  dtypes: MatmulDtypes;
  /** Bucket of M·batch. */
  m: SizeBucket;
  /** Bucket of N. */
  n: SizeBucket;
  /** Bucket of K. */
  k: SizeBucket;
}

/** One matmul problem. */
export interface MatmulShape {
  /** Output rows (per batch entry). */
  M: number;
  /** Output columns. */
  N: number;
  /** Reduction length. */
  K: number;
  /** Batch entries (default 1). */
  batch?: number;
  /** A stored [K, M]. */
  transA?: boolean;
  /** B stored [N, K]. */
  transB?: boolean;
  /** Element type of A (default f32). */
  aType?: "f32" | "f16";
  /** Element type of B (default f32). */
  bType?: "f32" | "f16";
}

/** One row of a tuning table: a (partial) class and the variant to use there. */
export interface MatmulTuningEntry {
  /** Class fields to match; missing fields match anything. */
  match: Partial<MatmulShapeClass>;
  /** The variant. */
  variant: MatmulVariant;
  /** The measured rate that chose it, when tuned. */
  tflops?: number;
  /** The shape it was measured at, when tuned (e.g. `nt f32 8192×768×2048`). */
  measuredAt?: string;
}

/** A tuning table (the JSON format of `bench/results/matmul-tuning-*.json`). */
export interface MatmulTuningTable {
  /** Format version (1). */
  version: 1;
  /** The adapter it was tuned on, for the record. */
  adapter?: string;
  /** Variant for shapes no entry matches. */
  default: MatmulVariant;
  /** Entries, most specific match wins. */
  entries: MatmulTuningEntry[];
}

const BUCKETS: [SizeBucket, number][] = [["xs", 64], ["s", 256], ["m", 1024], ["l", 4096]];

/** The size bucket of `x`. */
export function sizeBucket(x: number): SizeBucket {
  for (const [name, max] of BUCKETS) if (x <= max) return name;
  return "xl";
}

/** The class of `shape`. */
export function shapeClass(shape: MatmulShape): MatmulShapeClass {
  const a = shape.aType ?? "f32", b = shape.bType ?? "f32";
  return {
    layout: `${shape.transA ? "t" : "n"}${shape.transB ? "t" : "n"}` as MatmulLayout,
    dtypes: a === b ? a : "mixed",
    m: sizeBucket(shape.M * (shape.batch ?? 1)),
    n: sizeBucket(shape.N),
    k: sizeBucket(shape.K),
  };
}

/** Readable form of a (partial) class, `*` for wildcards: `nt f32 M=xl N=l K=m`. */
export function className(c: Partial<MatmulShapeClass>): string {
  return `${c.layout ?? "*"} ${c.dtypes ?? "*"} M=${c.m ?? "*"} N=${c.n ?? "*"} K=${c.k ?? "*"}`;
}

/** Readable form of a shape: `nt f32 8192×768×2048` (M×K×N, like the benches) plus batch. */
export function shapeName(s: MatmulShape): string {
  const c = shapeClass(s);
  return `${c.layout} ${c.dtypes} ${s.M}×${s.K}×${s.N}${(s.batch ?? 1) > 1 ? ` b${s.batch}` : ""}`;
}

/** The small variant: 64×64×16 tiles, 4×4 per thread, 256 threads, 8 KiB. */
export const SMALL_VARIANT: MatmulVariant = {
  bm: 64,
  bn: 64,
  bk: 16,
  tm: 4,
  tn: 4,
  vec4: true,
  buffering: "single",
  pad: 0,
};

/** The large-GPU guess: 128×128×16, 8×8 per thread, double-buffered (33 KiB). */
export const LARGE_VARIANT: MatmulVariant = {
  bm: 128,
  bn: 128,
  bk: 16,
  tm: 8,
  tn: 8,
  vec4: true,
  buffering: "double",
  pad: 4,
};

/** Built-in table for CPU adapters (lavapipe): the small variant everywhere. */
export const CPU_TABLE: MatmulTuningTable = { version: 1, default: SMALL_VARIANT, entries: [] };

/**
 * Built-in guesses for a large GPU until a sweep replaces them: big tiles for
 * big products, 64×64 tiles where M·batch or N is small (enough workgroups).
 */
export const GPU_TABLE: MatmulTuningTable = {
  version: 1,
  default: LARGE_VARIANT,
  entries: [
    ...(["xs", "s", "m"] as const).map((m) => ({
      match: { m },
      variant: { ...SMALL_VARIANT, buffering: "double" as const, pad: 4 },
    })),
    ...(["xs", "s", "m"] as const).map((n) => ({
      match: { n },
      variant: { ...SMALL_VARIANT, buffering: "double" as const, pad: 4 },
    })),
  ],
};

const FIELDS = ["layout", "dtypes", "m", "n", "k"] as const;

/** Entry of `table` for `cls` (most specific match; ties: first), or `undefined`. */
export function lookupEntry(
  table: MatmulTuningTable,
  cls: MatmulShapeClass,
): MatmulTuningEntry | undefined {
  let best: MatmulTuningEntry | undefined, bestScore = -1;
  for (const entry of table.entries) {
    let score = 0, ok = true;
    for (const f of FIELDS) {
      const want = entry.match[f];
      if (want === undefined) continue;
      if (want !== cls[f]) {
        ok = false;
        break;
      }
      score++;
    }
    if (ok && score > bestScore) [best, bestScore] = [entry, score];
  }
  return best;
}

/** The variant `table` assigns to `shape`. */
export function lookupVariant(table: MatmulTuningTable, shape: MatmulShape): MatmulVariant {
  return lookupEntry(table, shapeClass(shape))?.variant ?? table.default;
}

const ALLOWED: Record<(typeof FIELDS)[number], readonly string[]> = {
  layout: ["nn", "nt", "tn", "tt"],
  dtypes: ["f32", "f16", "mixed"],
  m: ["xs", "s", "m", "l", "xl"],
  n: ["xs", "s", "m", "l", "xl"],
  k: ["xs", "s", "m", "l", "xl"],
};

function parseVariant(raw: unknown, source: string, field: string): MatmulVariant {
  const fail = (f: string, problem: string) => new Error(`${source} (field "${f}"): ${problem}`);
  if (typeof raw !== "object" || raw === null) throw fail(field, "expected an object");
  const r = raw as Record<string, unknown>;
  for (const f of ["bm", "bn", "bk", "tm", "tn", "pad"]) {
    if (typeof r[f] !== "number") throw fail(`${field}.${f}`, "expected a number");
  }
  if (typeof r.vec4 !== "boolean") throw fail(`${field}.vec4`, "expected true or false");
  const v: MatmulVariant = {
    bm: r.bm as number,
    bn: r.bn as number,
    bk: r.bk as number,
    tm: r.tm as number,
    tn: r.tn as number,
    vec4: r.vec4,
    buffering: r.buffering as MatmulVariant["buffering"],
    pad: r.pad as number,
  };
  if (r.swizzle !== undefined) {
    if (typeof r.swizzle !== "number") throw fail(`${field}.swizzle`, "expected a number");
    v.swizzle = r.swizzle;
  }
  const problem = variantProblem(v);
  if (problem) throw fail(field, problem);
  return v;
}

/**
 * Validates parsed JSON as a tuning table; errors name `source` and the
 * field (`entries[2].variant.tm`). Extra fields (measurements) are ignored.
 */
export function parseMatmulTuning(raw: unknown, source: string): MatmulTuningTable {
  const fail = (f: string, problem: string) => new Error(`${source} (field "${f}"): ${problem}`);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${source}: a matmul tuning table must be a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  if (r.version !== 1) throw fail("version", `expected 1, got ${JSON.stringify(r.version)}`);
  const table: MatmulTuningTable = {
    version: 1,
    default: parseVariant(r.default, source, "default"),
    entries: [],
  };
  if (typeof r.adapter === "string") table.adapter = r.adapter;
  if (!Array.isArray(r.entries)) throw fail("entries", "expected an array");
  r.entries.forEach((e: unknown, i: number) => {
    const at = `entries[${i}]`;
    if (typeof e !== "object" || e === null) throw fail(at, "expected an object");
    const entry = e as Record<string, unknown>;
    const match = entry.match ?? {};
    if (typeof match !== "object" || match === null) {
      throw fail(`${at}.match`, "expected an object");
    }
    const parsed: Partial<MatmulShapeClass> = {};
    for (const [key, value] of Object.entries(match)) {
      const allowed = ALLOWED[key as (typeof FIELDS)[number]];
      if (!allowed) throw fail(`${at}.match.${key}`, "unknown class field");
      if (!allowed.includes(value as string)) {
        throw fail(`${at}.match.${key}`, `${JSON.stringify(value)} is not one of ${allowed}`);
      }
      (parsed as Record<string, unknown>)[key] = value;
    }
    const out: MatmulTuningEntry = {
      match: parsed,
      variant: parseVariant(entry.variant, source, `${at}.variant`),
    };
    if (typeof entry.tflops === "number") out.tflops = entry.tflops;
    if (typeof entry.measuredAt === "string") out.measuredAt = entry.measuredAt;
    table.entries.push(out);
  });
  return table;
}

/** Reads and validates a tuning table JSON file. */
export function readMatmulTuningFile(path: string): MatmulTuningTable {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`matmul tuning table ${path}: cannot read (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
  return parseMatmulTuning(raw, path);
}

/** Writes `table` (plus optional extra fields such as measurements) as JSON. */
export function writeMatmulTuningFile(
  path: string,
  table: MatmulTuningTable,
  extra: Record<string, unknown> = {},
): void {
  Deno.writeTextFileSync(path, JSON.stringify({ ...table, ...extra }, null, 2) + "\n");
}

let active: MatmulTuningTable | undefined;
let envChecked = false;

/**
 * Makes `table` the one matmul consults from now on; `undefined` returns to
 * the built-in table of the adapter kind (or `IRFORGE_MATMUL_TUNING`).
 */
export function useMatmulTuning(table: MatmulTuningTable | undefined): void {
  active = table;
  envChecked = table !== undefined;
}

/** Reads a tuning table file and makes it active (see {@link useMatmulTuning}). */
export function loadMatmulTuning(path: string): MatmulTuningTable {
  const table = readMatmulTuningFile(path);
  useMatmulTuning(table);
  return table;
}

/**
 * The table matmul consults: an explicitly set one, else the file named by
 * `IRFORGE_MATMUL_TUNING` (read once), else {@link CPU_TABLE} or
 * {@link GPU_TABLE} by adapter kind.
 */
export function activeMatmulTuning(isCpuAdapter: boolean): MatmulTuningTable {
  if (!envChecked) {
    envChecked = true;
    const path = Deno.env.get("IRFORGE_MATMUL_TUNING");
    if (path) active = readMatmulTuningFile(path);
  }
  return active ?? (isCpuAdapter ? CPU_TABLE : GPU_TABLE);
}

/**
 * The variant for `shape` under the active table, replaced by the small
 * variant when the device cannot run it (workgroup memory or threads).
 */
export function chooseMatmulVariant(
  shape: MatmulShape,
  device: { isCpuAdapter: boolean; limits: MatmulLimits },
): MatmulVariant {
  const v = lookupVariant(activeMatmulTuning(device.isCpuAdapter), shape);
  return fitsDevice(v, device.limits) ? v : SMALL_VARIANT;
}

// Per device limits, whether each variant object fits (lookups run per call).
const fitCache = new WeakMap<MatmulLimits, WeakMap<MatmulVariant, boolean>>();

function fitsDevice(v: MatmulVariant, limits: MatmulLimits): boolean {
  let perLimits = fitCache.get(limits);
  if (!perLimits) fitCache.set(limits, perLimits = new WeakMap());
  let ok = perLimits.get(v);
  if (ok === undefined) {
    ok = variantProblem(v, limits) === undefined;
    perLimits.set(v, ok);
  }
  return ok;
}

/** Describes `table` as lines `class → variant` (for logs). */
export function describeMatmulTuning(table: MatmulTuningTable): string[] {
  return [
    ...table.entries.map((e) => `${className(e.match)} → ${variantName(e.variant)}`),
    `default → ${variantName(table.default)}`,
  ];
}
