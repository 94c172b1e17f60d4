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
  /**
   * Split-K factor (1: never split). Absent: routing chooses it from the
   * counts (`autoSplitK` in `matmul_route.ts`).
   */
  splitK?: number;
  /** Where the choice comes from (a measurement, or a design choice awaiting one). */
  source?: string;
  /**
   * `subgroup-matrix`: f16×f16 products of the class run on subgroup matrices
   * (`matmul_subgroup_matrix.ts`) where the device has them; `variant` is
   * then the tiled fallback elsewhere (see {@link subgroupMatrixRouted}).
   */
  kernel?: "subgroup-matrix";
}

/** A tuning table (the JSON format of `bench/results/matmul-tuning-*.json`). */
export interface MatmulTuningTable {
  /** Format version (1). */
  version: 1;
  /** The adapter it was tuned on, for the record. */
  adapter?: string;
  /** Variant for shapes no entry matches. */
  default: MatmulVariant;
  /** Where the default comes from. */
  defaultSource?: string;
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

/** 64×64×16, 4×4 per thread, double-buffered and padded: thin outputs on large GPUs. */
export const THIN_VARIANT: MatmulVariant = { ...SMALL_VARIANT, buffering: "double", pad: 4 };

/**
 * The large-GPU variant: 128×128×8, 8×8 per thread, double-buffered
 * (16.5 KiB). Measured on the H200 sitting of 2026-12-04: the best
 * geometric mean over the 12 sweep shapes (11.1 TFLOP/s; next
 * 128×128×16 prefetch 10.1).
 */
export const LARGE_VARIANT: MatmulVariant = {
  bm: 128,
  bn: 128,
  bk: 8,
  tm: 8,
  tn: 8,
  vec4: true,
  buffering: "double",
  pad: 4,
};

/** 128×128×16, 8×8 per thread, prefetching the next K tile into registers (16.5 KiB). */
export const LARGE_PREFETCH_VARIANT: MatmulVariant = {
  ...LARGE_VARIANT,
  bk: 16,
  buffering: "prefetch",
};

/** Built-in table for CPU adapters (lavapipe): the small variant everywhere. */
export const CPU_TABLE: MatmulTuningTable = {
  version: 1,
  default: SMALL_VARIANT,
  defaultSource: "design: 8 KiB, 256 threads; every adapter runs it",
  entries: [],
};

const SITTING = "measured: H200 sitting 2026-12-04 (shared/measurements/2026-12-04-h200)";
const THIN_TILES = "design, awaiting measurement: 64×64 tiles halve the wasted FMAs of " +
  "partial 128-wide tiles on outputs ≤ 256 wide (a rank-16 LoRA product on 128 columns " +
  "computes 8× its FMAs, on 64 columns 4×)";

/**
 * Built-in table for large GPUs. Every entry says where it comes from: the
 * H200 sitting (f32, 16-variant sweep) or a design choice awaiting
 * measurement. Entries match every dtype: f16 operands are converted to f32
 * while staged into workgroup memory, so the hot loop is the f32 one and
 * only global bytes change (halved for the f16 operand). No entry fixes a
 * split factor: routing splits K by the counts (`matmul_route.ts`).
 * The sweep's winners at the 25.8-GFLOP shapes (8192×768×2048 family) are
 * not used: they look clock-limited (see the module docs of
 * `matmul_route.ts`), so those classes keep the default and the counts'
 * split until a warm-clock sweep measures them.
 */
export const GPU_TABLE: MatmulTuningTable = {
  version: 1,
  default: LARGE_VARIANT,
  defaultSource: `${SITTING}: best geometric mean of the 16 variants over the 12 sweep shapes ` +
    "(11.1 TFLOP/s); best at 4096³ nn 28.1 and tn 16.7, nt 8192×768×2048 13.5, tn 32768×8192×768 31.6",
  entries: [
    {
      match: { layout: "nt", m: "xl", n: "xl", k: "m" },
      variant: LARGE_PREFETCH_VARIANT,
      tflops: 30.0,
      measuredAt: "nt f32 8192×768×32768",
      source: `${SITTING}: LM head x·Wᵀ 30.0 TFLOP/s vs 28.0 for the default`,
    },
    {
      match: { layout: "nn", m: "xl", n: "m", k: "xl" },
      variant: LARGE_PREFETCH_VARIANT,
      tflops: 27.3,
      measuredAt: "nn f32 8192×32768×768",
      source: `${SITTING}: LM head dX 27.3 TFLOP/s vs 24.4 for the default`,
    },
    ...(["xs", "s"] as const).flatMap((b) => [
      { match: { m: b }, variant: THIN_VARIANT, source: THIN_TILES },
      { match: { n: b }, variant: THIN_VARIANT, source: THIN_TILES },
    ]),
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

/**
 * Whether `table` sends an f16×f16 product of `shape` to the subgroup-matrix
 * kernel (where the device has it): yes when its entry says
 * `kernel: "subgroup-matrix"`, no when an entry measured on f16 operands chose
 * a tiled variant (the tuner timed both), and yes when the table has no
 * measurement for the class (the matrix units are the default for f16).
 */
export function subgroupMatrixRouted(table: MatmulTuningTable, shape: MatmulShape): boolean {
  const entry = lookupEntry(table, shapeClass(shape));
  if (entry?.kernel === "subgroup-matrix") return true;
  return !(entry && entry.match.dtypes === "f16" && entry.tflops !== undefined);
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
  if (typeof r.defaultSource === "string") table.defaultSource = r.defaultSource;
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
    if (entry.splitK !== undefined) {
      const k = entry.splitK;
      if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > 256) {
        throw fail(`${at}.splitK`, `expected an integer from 1 to 256, got ${JSON.stringify(k)}`);
      }
      out.splitK = k;
    }
    if (typeof entry.source === "string") out.source = entry.source;
    if (entry.kernel !== undefined) {
      if (entry.kernel !== "subgroup-matrix") {
        throw fail(
          `${at}.kernel`,
          `expected "subgroup-matrix", got ${JSON.stringify(entry.kernel)}`,
        );
      }
      out.kernel = entry.kernel;
    }
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
    ...table.entries.map((e) =>
      `${className(e.match)} → ${
        e.kernel ? `${e.kernel} (elsewhere ${variantName(e.variant)})` : variantName(e.variant)
      }${e.splitK !== undefined ? ` split ${e.splitK}` : ""}${e.source ? ` (${e.source})` : ""}`
    ),
    `default → ${variantName(table.default)}${
      table.defaultSource ? ` (${table.defaultSource})` : ""
    }`,
  ];
}
