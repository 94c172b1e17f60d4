/**
 * Matmul autotuning: {@link tuneMatmul} times routes — kernel variants and
 * split-K factors, what routing can choose — at given shapes (GPU
 * timestamps when the device has `timestamp-query`, else wall clock around
 * `onSubmittedWorkDone`), checks each route's output, and builds a tuning
 * table (best route per shape class) that `matmul` uses once activated
 * ({@link useMatmulTuning}), saved ({@link writeMatmulTuningFile}) and
 * loaded again ({@link loadMatmulTuning} or `IRFORGE_MATMUL_TUNING`).
 * {@link transformerMatmulShapes} lists the products of a transformer's
 * training step in all three layouts (the tuner's shape set).
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import { currentDevice } from "../device.ts";
import { randnArray } from "../random.ts";
import { getRuntime } from "../runtime.ts";
import { tidy } from "../scope.ts";
import { Tensor } from "../tensor.ts";
import { relativeError } from "../testing/assert_close.ts";
import { matmulRaw } from "./matmul.ts";
import {
  MATMUL_FAMILY,
  type MatmulVariant,
  variantName,
  variantProblem,
} from "./matmul_kernels.ts";
import { splitPlan } from "./matmul_counts.ts";
import { refMatmul } from "./matmul_reference.ts";
import { autoSplitK } from "./matmul_route.ts";
import {
  subgroupMatrixAvailable,
  subgroupMatrixConfig,
  subgroupMatrixMatmul,
  subgroupMatrixUnavailableReason,
} from "./matmul_subgroup_matrix.ts";
import { describeMatrixConfig } from "../device.ts";
import {
  type MatmulShape,
  type MatmulShapeClass,
  type MatmulTuningTable,
  shapeClass,
  shapeName,
  SMALL_VARIANT,
} from "./matmul_table.ts";

export {
  type Activation,
  MATMUL_FAMILY,
  type MatmulBuffering,
  matmulKernelCode,
  type MatmulKernelSpec,
  type MatmulLimits,
  matmulSpecKey,
  type MatmulTiles,
  type MatmulVariant,
  matmulVariantGrid,
  variantName,
  variantProblem,
  variantThreads,
  variantWorkgroupBytes,
} from "./matmul_kernels.ts";
export {
  activeMatmulTuning,
  chooseMatmulVariant,
  className,
  CPU_TABLE,
  describeMatmulTuning,
  GPU_TABLE,
  LARGE_PREFETCH_VARIANT,
  LARGE_VARIANT,
  loadMatmulTuning,
  lookupEntry,
  lookupVariant,
  type MatmulDtypes,
  type MatmulLayout,
  type MatmulShape,
  type MatmulShapeClass,
  type MatmulTuningEntry,
  type MatmulTuningTable,
  parseMatmulTuning,
  readMatmulTuningFile,
  shapeClass,
  shapeName,
  type SizeBucket,
  sizeBucket,
  SMALL_VARIANT,
  subgroupMatrixRouted,
  THIN_VARIANT,
  useMatmulTuning,
  writeMatmulTuningFile,
} from "./matmul_table.ts";
export {
  estimatedRegisters,
  matmulCounts,
  type MatmulCountsProblem,
  type MatmulPassCounts,
  matmulPassCounts,
  type MatmulRoute,
  matmulWave,
  REDUCE_THREADS,
  REGISTERS_PER_MULTIPROCESSOR,
  type SplitPlan,
  splitPlan,
} from "./matmul_counts.ts";
export {
  adapterForWave,
  autoSplitK,
  explainMatmulRoute,
  type MatmulRouteExplained,
  type RouteDevice,
  routeMatmul,
  SPLIT_MAX,
  SPLIT_MIN_CHUNK,
  SPLIT_MIN_WAVES,
} from "./matmul_route.ts";
export {
  MISTRAL_7B_DIMS,
  MISTRAL_SMALL_DIMS,
  type TransformerDims,
  transformerMatmulShapes,
  type TransformerShapeOptions,
} from "./matmul_shapes.ts";

/** Options of {@link tuneMatmul}. */
export interface TuneMatmulOptions {
  /** Timed runs per variant and shape (median reported); default 5. */
  reps?: number;
  /**
   * Check every variant's output (default true): against a float64 CPU
   * product for small shapes (M·N·K·batch ≤ 2²⁴), else against the scalar
   * 64×64 variant on up to 1 Mi leading and trailing elements.
   */
  verify?: boolean;
  /** Called after each measurement (progress output). */
  onProgress?: (m: MatmulMeasurement, done: number, total: number) => void;
  /**
   * Split-K factors swept per variant and shape (default 1, 2, 4, 8), plus
   * the factor routing would choose there on this adapter. A factor is
   * skipped where its K ranges would be shorter than
   * {@link MIN_TUNED_SPLIT_CHUNK} or it cuts K into fewer ranges than asked
   * (the same launch as a smaller factor).
   */
  splitFactors?: readonly number[];
  /**
   * Also time the subgroup-matrix kernel at f16×f16 shapes (default true).
   * Where the device lacks the feature the route is recorded as skipped with
   * the reason.
   */
  subgroupMatrix?: boolean;
}

/** Shortest K range the tuner times a split at (routing itself keeps ≥ 512). */
export const MIN_TUNED_SPLIT_CHUNK = 128;

/** One variant timed at one shape. */
export interface MatmulMeasurement {
  /** The shape. */
  shape: MatmulShape;
  /** Readable shape (`nt f32 8192×768×2048`). */
  shapeName: string;
  /** The variant. */
  variant: MatmulVariant;
  /** Readable variant. */
  variantName: string;
  /** Split-K factor asked for (absent in measurements from before split-K: 1). */
  splitK?: number;
  /** Readable route: the variant, and ` split N` when N > 1. */
  routeName?: string;
  /** Median milliseconds per product (NaN when skipped). */
  ms: number;
  /** 2·M·N·K·batch / time, in TFLOP/s (NaN when skipped). */
  tflops: number;
  /** Relative error of the output against the check (see {@link TuneMatmulOptions.verify}). */
  error?: number;
  /** Why the variant was not timed or not eligible (device limits, wrong output, error). */
  skipped?: string;
  /**
   * `subgroup-matrix` when the route is that kernel (then `variant` is the
   * tiled fallback a table entry names for devices without it).
   */
  kernel?: "subgroup-matrix";
}

/** What {@link tuneMatmul} returns. */
export interface MatmulTuningResult {
  /** Every variant × shape. */
  measurements: MatmulMeasurement[];
  /** Best variant per shape class, default = best geometric-mean rate over all shapes. */
  table: MatmulTuningTable;
  /** How the timings were taken. */
  timing: "gpu-timestamps" | "wall-clock";
}

const SMALL_PRODUCT = 1 << 24;

type MatrixKernel = "subgroup-matrix" | undefined;

/** Largest error a correct variant shows, relative to max |C| (f32 or any f16 operand). */
function tolerance(shape: MatmulShape): number {
  return shape.aType === "f16" || shape.bType === "f16" ? 2e-2 : 1e-3;
}

/** Median of `xs`. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Reads up to `limit` leading and trailing f32 values of `t` (or all of it). */
async function sampleOutput(t: Tensor, limit: number): Promise<Float32Array> {
  const rt = getRuntime();
  if (t.size <= 2 * limit) return new Float32Array(await rt.read(t.buffer, t.size * 4));
  const head = new Float32Array(await rt.read(t.buffer, limit * 4));
  const tail = new Float32Array(await rt.read(t.buffer, limit * 4, (t.size - limit) * 4));
  const out = new Float32Array(2 * limit);
  out.set(head);
  out.set(tail, limit);
  return out;
}

/**
 * Times every candidate at every shape and returns the measurements and the
 * best table. Candidates the device cannot run (workgroup memory, threads)
 * or whose output is wrong are recorded as skipped and never chosen.
 */
export async function tuneMatmul(
  shapes: readonly MatmulShape[],
  candidates: readonly MatmulVariant[] = MATMUL_FAMILY,
  options: TuneMatmulOptions = {},
): Promise<MatmulTuningResult> {
  const device = currentDevice();
  const rt = getRuntime();
  const reps = Math.max(1, options.reps ?? 5);
  const verify = options.verify ?? true;
  const measurements: MatmulMeasurement[] = [];
  const factors = options.splitFactors ?? [1, 2, 4, 8];
  const withMatrix = options.subgroupMatrix ?? true;
  const matrixProblem = subgroupMatrixUnavailableReason(device);
  const matrixConfig = subgroupMatrixConfig(device);
  // Routes per shape: each candidate at each split factor that makes a distinct launch.
  const routesOf = (shape: MatmulShape) =>
    candidates.flatMap((variant) => {
      const wanted = new Set([...factors, autoSplitK(shape, variant, device)]);
      const splits = [...wanted].filter((s) => {
        if (s === 1) return true;
        const plan = splitPlan(shape.K, s, variant.bk);
        return plan.splits === s && plan.kChunk >= MIN_TUNED_SPLIT_CHUNK;
      }).sort((x, y) => x - y);
      return splits.map((splitK) => ({ variant, splitK, kernel: undefined as MatrixKernel }));
    }).concat(
      withMatrix && shape.aType === "f16" && shape.bType === "f16"
        ? [{ variant: SMALL_VARIANT, splitK: 1, kernel: "subgroup-matrix" as MatrixKernel }]
        : [],
    );
  const total = shapes.reduce((n, s) => n + routesOf(s).length, 0);
  const timing = device.hasTimestamps ? "gpu-timestamps" : "wall-clock";
  for (const shape of shapes) {
    const batch = shape.batch ?? 1;
    const { M, N, K } = shape;
    const aType = shape.aType ?? "f32", bType = shape.bType ?? "f32";
    const flops = 2 * M * N * K * batch;
    let a: Tensor | undefined, b: Tensor | undefined;
    const run = (variant: MatmulVariant, splitK = 1, kernel?: MatrixKernel) =>
      noGrad(() =>
        tidy(() =>
          kernel === "subgroup-matrix"
            ? subgroupMatrixMatmul(a!, b!, { transA: shape.transA, transB: shape.transB })
            : matmulRaw(a!, b!, { transA: shape.transA, transB: shape.transB, variant, splitK })
        )
      );
    let expected: ArrayLike<number> | undefined;
    let limit = 1 << 20; // elements read back from each end of C (whole C for float64 checks)
    let shapeProblem: string | undefined;
    try {
      const aData = randnArray(batch * M * K, 11), bData = randnArray(batch * K * N, 12);
      const lead = batch > 1 ? [batch] : [];
      a = Tensor.fromArray(aData, [...lead, ...(shape.transA ? [K, M] : [M, K])], aType);
      b = Tensor.fromArray(bData, [...lead, ...(shape.transB ? [N, K] : [K, N])], bType);
      if (verify && M * N * K * batch <= SMALL_PRODUCT) {
        limit = Infinity;
        const round = (x: Float64Array, t: string) =>
          Float64Array.from(t === "f16" ? Float16Array.from(x) : Float32Array.from(x));
        expected = refMatmul(round(aData, aType), round(bData, bType), {
          batch,
          M,
          N,
          K,
          tA: shape.transA ?? false,
          tB: shape.transB ?? false,
          aB: batch > 1,
          bB: batch > 1,
        });
      } else if (verify) {
        const c = run({ ...SMALL_VARIANT, vec4: false });
        expected = await sampleOutput(c, limit);
        c.dispose();
      }
    } catch (e) {
      // E.g. an operand larger than one storage binding: no variant can run it.
      shapeProblem = `shape not runnable: ${(e as Error).message}`;
      await rt.checkErrors().catch(() => {});
    }
    for (const { variant, splitK, kernel } of routesOf(shape)) {
      const matrixName = `subgroup-matrix ${
        matrixConfig ? describeMatrixConfig(matrixConfig) : "(unavailable)"
      }`;
      const m: MatmulMeasurement = {
        shape,
        shapeName: shapeName(shape),
        variant,
        variantName: kernel ? matrixName : variantName(variant),
        splitK,
        routeName: kernel ? matrixName : routeName(variant, splitK),
        ms: NaN,
        tflops: NaN,
        ...(kernel ? { kernel } : {}),
      };
      const problem = shapeProblem ??
        (kernel
          ? (subgroupMatrixAvailable(device) ? undefined : matrixProblem ?? "unavailable")
          : variantProblem(variant, device.limits));
      if (problem) {
        m.skipped = problem;
      } else {
        try {
          const first = run(variant, splitK, kernel); // compiles the pipelines
          if (expected) {
            const got = await sampleOutput(first, limit);
            m.error = relativeError(got, expected).relative;
            if (!(m.error <= tolerance(shape))) m.skipped = `wrong output (error ${m.error})`;
          } else {
            await rt.sync();
          }
          first.dispose();
          const samples: number[] = [];
          for (let i = 0; i < reps && !m.skipped; i++) {
            if (rt.startTiming()) {
              run(variant, splitK, kernel).dispose();
              const spans = await rt.stopTiming();
              samples.push(spans.reduce((s, [, ns]) => s + ns, 0) / 1e6);
            } else {
              const t0 = performance.now();
              run(variant, splitK, kernel).dispose();
              await rt.sync();
              samples.push(performance.now() - t0);
            }
          }
          if (samples.length) {
            m.ms = median(samples);
            m.tflops = flops / (m.ms / 1e3) / 1e12;
          }
        } catch (e) {
          m.skipped = `error: ${(e as Error).message}`;
          await rt.checkErrors().catch(() => {});
        }
      }
      measurements.push(m);
      options.onProgress?.(m, measurements.length, total);
    }
    a?.dispose();
    b?.dispose();
  }
  return {
    measurements,
    table: bestTable(measurements, device.adapter.description),
    timing,
  };
}

/** Readable route: `128x128x8 8x8 double pad4 v4 split 4`. */
export function routeName(variant: MatmulVariant, splitK = 1): string {
  return `${variantName(variant)}${splitK > 1 ? ` split ${splitK}` : ""}`;
}

/**
 * Builds a table from measurements: per shape class, the route (variant and
 * split factor) with the least total time over that class's shapes (among
 * routes valid on all of them; the entry records the split factor when the
 * measurements swept any, so routing does not second-guess it); default,
 * the unsplit variant with the best geometric-mean rate over all shapes
 * (falls back to the small variant when nothing was valid).
 */
export function bestTable(
  measurements: readonly MatmulMeasurement[],
  adapter?: string,
): MatmulTuningTable {
  const valid = measurements.filter((m) => !m.skipped && Number.isFinite(m.ms));
  const byClass = new Map<string, { cls: MatmulShapeClass; ms: MatmulMeasurement[] }>();
  for (const m of measurements) {
    const cls = shapeClass(m.shape);
    const key = JSON.stringify(cls);
    if (!byClass.has(key)) byClass.set(key, { cls, ms: [] });
  }
  for (const m of valid) byClass.get(JSON.stringify(shapeClass(m.shape)))!.ms.push(m);
  const table: MatmulTuningTable = {
    version: 1,
    default: SMALL_VARIANT,
    entries: [],
  };
  if (adapter) table.adapter = adapter;
  const shapesOf = (ms: readonly MatmulMeasurement[]) => new Set(ms.map((m) => m.shapeName));
  const key = (m: MatmulMeasurement) => m.routeName ?? routeName(m.variant, m.splitK);
  const pick = (ms: readonly MatmulMeasurement[], score: (rows: MatmulMeasurement[]) => number) => {
    const shapes = shapesOf(ms);
    const perVariant = new Map<string, MatmulMeasurement[]>();
    for (const m of ms) perVariant.set(key(m), [...perVariant.get(key(m)) ?? [], m]);
    let best: MatmulMeasurement[] | undefined, bestScore = Infinity;
    for (const rows of perVariant.values()) {
      if (rows.length !== shapes.size) continue; // must run everywhere in the group
      const s = score(rows);
      if (s < bestScore) [best, bestScore] = [rows, s];
    }
    return best;
  };
  for (const { cls, ms } of byClass.values()) {
    const best = pick(ms, (rows) => rows.reduce((s, m) => s + m.ms, 0));
    if (!best) continue;
    const top = best.reduce((x, y) => (x.tflops >= y.tflops ? x : y));
    // A subgroup-matrix entry names the class's best tiled variant for devices without it.
    const tiled = top.kernel
      ? pick(ms.filter((m) => !m.kernel), (rows) => rows.reduce((s, m) => s + m.ms, 0))
      : undefined;
    table.entries.push({
      match: cls,
      variant: tiled?.[0]?.variant ?? top.variant,
      ...(top.kernel ? { kernel: top.kernel } : {}),
      ...(top.splitK !== undefined && !top.kernel ? { splitK: top.splitK } : {}),
      tflops: Number(top.tflops.toPrecision(4)),
      measuredAt: best.map((m) => m.shapeName).join(", "),
      source: `tuned${adapter ? ` on ${adapter}` : ""}: least total time over the class`,
    });
  }
  // The default serves every dtype: tiled variants only.
  const unsplit = valid.filter((m) => (m.splitK ?? 1) === 1 && !m.kernel);
  const overall = pick(unsplit, (rows) => -rows.reduce((s, m) => s + Math.log(m.tflops), 0));
  if (overall) {
    table.default = overall[0]!.variant;
    table.defaultSource = `tuned${adapter ? ` on ${adapter}` : ""}: best geometric-mean rate`;
  }
  return table;
}
