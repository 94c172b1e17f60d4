/**
 * Matmul routing: which kernel variant and split-K factor run a problem.
 * The tuning table (`matmul_table.ts`) names the variant of a shape class
 * and, when it was measured, the split factor; where it does not, the split
 * is chosen from the counts ({@link autoSplitK}): a product whose output
 * tiles fill fewer than {@link SPLIT_MIN_WAVES} waves of the adapter and
 * whose K is long gets more workgroups by cutting K into ranges whose
 * partial sums a second pass adds in fixed order.
 *
 * Why: on the H200 sitting of 2026-12-04, x·Wᵀ 8192×2048×768 ran at 4.8
 * TFLOP/s and 8192×768×2048 at 13.5. The counts of the two (128×128 tiles)
 * differ only in workgroups — 384 (1.45 register-limited waves of 264) with
 * K = 2048 each, against 1024 (3.9 waves) with K = 768 — while FLOPs, bytes
 * and loads per FMA are equal; 2 splits give the first 768 workgroups (2.9
 * waves) for 12% more global traffic. The same 384-workgroup grid ran the
 * LM head's dX (K = 32768) at 27.3, 5.7× faster per K step, which is the
 * ratio of the H200's top SM clock to the idle clock logged at the start of
 * the sitting (1980 / 345 MHz): much of that gap may be clock state during
 * short products, which only a warm-clock measurement can separate.
 *
 * @example Route the dW product of a 768→2048 projection over 8192 tokens
 * ```ts
 * import { routeMatmul } from "./matmul_route.ts";
 * import { GPU_TABLE } from "./matmul_table.ts";
 *
 * const h200 = {
 *   adapter: { description: "NVIDIA H200" },
 *   isCpuAdapter: false,
 *   limits: {
 *     maxComputeWorkgroupStorageSize: 49152,
 *     maxComputeInvocationsPerWorkgroup: 1024,
 *     maxComputeWorkgroupSizeX: 1024,
 *     maxStorageBufferBindingSize: 2 ** 31,
 *   },
 * };
 * const route = routeMatmul({ M: 2048, N: 768, K: 8192, transA: true }, h200, GPU_TABLE);
 * console.log(route.splitK); // 6: 96 output tiles become 576 workgroups (2.2 waves)
 * ```
 *
 * @module
 */

import type { AdapterForWave, KernelCounts, WaveEstimate } from "../lab/counts.ts";
import {
  matmulCounts,
  type MatmulPassCounts,
  matmulPassCounts,
  type MatmulRoute,
  matmulWave,
  splitPlan,
} from "./matmul_counts.ts";
import { type MatmulLimits, type MatmulVariant, variantProblem } from "./matmul_kernels.ts";
import {
  activeMatmulTuning,
  lookupEntry,
  type MatmulShape,
  type MatmulTuningTable,
  shapeClass,
  SMALL_VARIANT,
} from "./matmul_table.ts";

export type { MatmulRoute } from "./matmul_counts.ts";

/**
 * Waves of the adapter below which a long-K product is split: with one
 * wave or less the last (or only) wave leaves multiprocessors idle for the
 * whole K loop; from two on, the idle tail is at most a third.
 */
export const SPLIT_MIN_WAVES = 2;

/**
 * Shortest K range of a split (elements). Each extra split writes and reads
 * one f32 per output: 8 bytes per 2·kChunk FLOPs, so 512 keeps the scratch
 * traffic under 1 byte per 128 FLOPs (≈ 0.5 TB/s at 67 TFLOP/s, a tenth of
 * an H200's memory bandwidth).
 */
export const SPLIT_MIN_CHUNK = 512;

/** Most splits routing chooses (scratch memory grows with the count). */
export const SPLIT_MAX = 16;

/** What routing needs to know of the device (a `Device` has it). */
export interface RouteDevice {
  /** The adapter's description, for the wave estimate. */
  adapter: { description: string };
  /** Whether the adapter runs on the CPU. */
  isCpuAdapter: boolean;
  /** Limits a variant and the split scratch must respect. */
  limits: MatmulLimits & { maxStorageBufferBindingSize: number };
}

/** The lab's view of `device`'s adapter. */
export function adapterForWave(device: RouteDevice): AdapterForWave {
  return { description: device.adapter.description, isCpuAdapter: device.isCpuAdapter };
}

/**
 * Split factor the counts choose for `shape` under `variant`: 1 when the
 * output tiles (× batch) already fill {@link SPLIT_MIN_WAVES} waves or K is
 * shorter than two {@link SPLIT_MIN_CHUNK}s; otherwise the fewest splits
 * that reach that many workgroups, bounded by K / SPLIT_MIN_CHUNK,
 * {@link SPLIT_MAX}, the scratch binding size and the dispatch's z limit.
 */
export function autoSplitK(
  shape: MatmulShape,
  variant: MatmulVariant,
  device: RouteDevice,
  cpuThreads?: number,
): number {
  const batch = shape.batch ?? 1;
  const tiles = Math.ceil(shape.M / variant.bm) * Math.ceil(shape.N / variant.bn) * batch;
  const target = SPLIT_MIN_WAVES * matmulWave(adapterForWave(device), variant, cpuThreads)
    .workgroupsPerWave;
  if (tiles >= target) return 1;
  const byK = Math.floor(shape.K / SPLIT_MIN_CHUNK);
  const byScratch = Math.floor(
    device.limits.maxStorageBufferBindingSize / (batch * shape.M * shape.N * 4),
  );
  const byDispatch = Math.floor(65535 / batch);
  const want = Math.min(Math.ceil(target / tiles), byK, SPLIT_MAX, byScratch, byDispatch);
  return want >= 2 ? splitPlan(shape.K, want, variant.bk).splits : 1;
}

/**
 * The route of `shape` under `table` (default: the active table): the
 * entry's variant (the small variant when the device cannot run it) and the
 * entry's measured split factor, else {@link autoSplitK}'s.
 */
export function routeMatmul(
  shape: MatmulShape,
  device: RouteDevice,
  table: MatmulTuningTable = activeMatmulTuning(device.isCpuAdapter),
  cpuThreads?: number,
): MatmulRoute {
  const entry = lookupEntry(table, shapeClass(shape));
  let variant = entry?.variant ?? table.default;
  if (variantProblem(variant, device.limits) !== undefined) variant = SMALL_VARIANT;
  const splitK = entry?.splitK !== undefined
    ? splitPlan(shape.K, entry.splitK, variant.bk).splits
    : autoSplitK(shape, variant, device, cpuThreads);
  return { variant, splitK };
}

/** A route with the counts that justify it (what the kernel lab prints). */
export interface MatmulRouteExplained {
  /** The route. */
  route: MatmulRoute;
  /** Counts of the whole route ({@link matmulCounts}). */
  counts: KernelCounts;
  /** Counts per pass. */
  passes: MatmulPassCounts;
  /** The product variant's wave estimate on the adapter. */
  wave: WaveEstimate;
  /** Waves the unsplit output tiles fill. */
  unsplitWaves: number;
  /** Waves the routed product fills. */
  waves: number;
  /** One sentence: why this split factor. */
  reason: string;
}

/** {@link routeMatmul} plus the counts, waves and a sentence saying why. */
export function explainMatmulRoute(
  shape: MatmulShape,
  device: RouteDevice,
  table: MatmulTuningTable = activeMatmulTuning(device.isCpuAdapter),
  cpuThreads?: number,
): MatmulRouteExplained {
  const route = routeMatmul(shape, device, table, cpuThreads);
  const wave = matmulWave(adapterForWave(device), route.variant, cpuThreads);
  const passes = matmulPassCounts(route, shape);
  const counts = matmulCounts(route, shape);
  const unsplit = matmulCounts({ variant: route.variant, splitK: 1 }, shape);
  const perWave = wave.workgroupsPerWave;
  const unsplitWaves = unsplit.workgroups / perWave, waves = counts.workgroups / perWave;
  const tiles = `${unsplit.workgroups} output tiles fill ${
    unsplitWaves.toFixed(2)
  } waves of ${perWave}`;
  const entry = lookupEntry(table, shapeClass(shape));
  let reason: string;
  if (entry?.splitK !== undefined) {
    reason = `the table fixes split ${entry.splitK}${entry.source ? ` (${entry.source})` : ""}`;
  } else if (route.splitK > 1) {
    const extra = (counts.globalReadBytes + counts.globalWriteBytes) -
      (unsplit.globalReadBytes + unsplit.globalWriteBytes);
    reason = `${tiles} (< ${SPLIT_MIN_WAVES}) and K = ${shape.K}: ${route.splitK} splits of ` +
      `${passes.split.kChunk} make ${counts.workgroups} workgroups (${waves.toFixed(2)} waves) ` +
      `for ${(extra / 1e6).toFixed(1)} MB more global traffic`;
  } else if (unsplitWaves >= SPLIT_MIN_WAVES) {
    reason = `${tiles}: no split`;
  } else {
    reason = `${tiles} but K = ${shape.K} is too short to split into ranges of ` +
      `${SPLIT_MIN_CHUNK} (or the scratch would not fit one binding)`;
  }
  return { route, counts, passes, wave, unsplitWaves, waves, reason };
}
