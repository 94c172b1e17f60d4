/**
 * Tile sizes and register blocking of the fused attention kernels, the
 * workgroup memory they need, and {@linkcode chooseTiling}, which picks the
 * best tiling a device's limits allow.
 *
 * Every kernel is register blocked: an invocation owns `rowsPerThread` rows
 * (query rows in the forward and dQ kernels, keys in the dK/dV kernel) times
 * `tile / threadsPerRow` columns of the score block, reads its operands as
 * `vec4` from workgroup memory, and accumulates its share of the output
 * (`rowsPerThread` rows × ⌈D/4 / threadsPerRow⌉ `vec4` columns) in registers.
 *
 * @module
 */

/** Tile sizes of one fused attention kernel family. */
export interface AttentionTiling {
  /** Query rows per tile (Br). */
  queryTile: number;
  /** Keys per tile (Bc). */
  keyTile: number;
  /**
   * Threads sharing one register block of rows: they split the tile's score
   * columns and the head dimension's `vec4` columns between them.
   */
  threadsPerRow: number;
  /**
   * Rows of the register block of each thread (query rows in forward and dQ,
   * keys in dK/dV); default the largest of 4, 2, 1 that divides the tiles.
   */
  rowsPerThread?: number;
}

/** Which kernel family a tiling is for (they differ in workgroup memory and constraints). */
export type TilingKernel = "forward" | "backward";

/** One kernel of a family. */
export type AttentionKernelName = "forward" | "dkdv" | "dq";

/** The register blocking a tiling gives one kernel, derived by {@linkcode kernelLayout}. */
export interface KernelLayout {
  /** Rows per tile the workgroup owns (Br for forward and dQ, Bc for dK/dV). */
  ownTile: number;
  /** Rows per tile the workgroup streams (Bc for forward and dQ, Br for dK/dV). */
  streamTile: number;
  /** Rows of each thread's register block (RM). */
  rows: number;
  /** Score columns of each thread's register block (RN = streamTile / threadsPerRow). */
  cols: number;
  /** Threads per row group (TC). */
  threadsPerRow: number;
  /** `vec4` columns of the head dimension per thread (CV = ⌈D4 / TC⌉). */
  chunks: number;
  /** ⌈D / 4⌉. */
  d4: number;
  /** Row stride of the staged tiles in `vec4` (odd, so strided rows fall in different banks). */
  stride4: number;
  /** Invocations per workgroup. */
  threads: number;
  /** f32 registers each thread accumulates the output block in. */
  accumulators: number;
}

/** `rowsPerThread` of `tiling`, defaulted. */
export function rowsPerThreadOf(tiling: AttentionTiling): number {
  if (tiling.rowsPerThread !== undefined) return tiling.rowsPerThread;
  for (const rows of [4, 2]) {
    if (tiling.queryTile % rows === 0 && tiling.keyTile % rows === 0) return rows;
  }
  return 1;
}

/** The register blocking of `kernel` for `headDim` and `tiling` (no validity check). */
export function kernelLayout(
  kernel: AttentionKernelName,
  headDim: number,
  tiling: AttentionTiling,
): KernelLayout {
  const rows = rowsPerThreadOf(tiling);
  const tc = tiling.threadsPerRow;
  const ownTile = kernel === "dkdv" ? tiling.keyTile : tiling.queryTile;
  const streamTile = kernel === "dkdv" ? tiling.queryTile : tiling.keyTile;
  const d4 = Math.ceil(headDim / 4);
  const chunks = Math.ceil(d4 / tc);
  return {
    ownTile,
    streamTile,
    rows,
    cols: Math.max(1, Math.floor(streamTile / tc)),
    threadsPerRow: tc,
    chunks,
    d4,
    stride4: d4 % 2 === 0 ? d4 + 1 : d4,
    threads: Math.ceil(ownTile / rows) * tc,
    accumulators: (kernel === "dkdv" ? 2 : 1) * rows * chunks * 4,
  };
}

/**
 * Bytes of workgroup memory one kernel declares (`subgroups`: the forward's
 * subgroup variant, which has no partial row-value array).
 */
export function kernelWorkgroupBytes(
  kernel: AttentionKernelName,
  headDim: number,
  tiling: AttentionTiling,
  subgroups = false,
): number {
  const { queryTile: br, keyTile: bc, threadsPerRow: tc } = tiling;
  const row = 16 * kernelLayout(kernel, headDim, tiling).stride4;
  if (kernel === "forward") {
    // Q tile, K tile, double-buffered V tile, P tile, partial row maxima, key metadata, bounds
    return row * (br + 3 * bc) + 4 * br * bc + (subgroups ? 0 : 4 * br * tc) + 16 * bc + 16;
  }
  if (kernel === "dkdv") {
    // K, V (resident), Q, dO (per query tile), Pᵀ and dSᵀ, query metadata and row stats, bounds
    return row * (2 * bc + 2 * br) + 8 * br * bc + 16 * br + 8 * br + 16;
  }
  // Q, dO (resident), double-buffered K, V, dS, key metadata, bounds
  return row * (2 * br + 3 * bc) + 4 * br * bc + 16 * bc + 16;
}

/** Bytes of workgroup memory a kernel family needs for `headDim` and `tiling` (its largest kernel). */
export function workgroupBytes(
  kernel: TilingKernel,
  headDim: number,
  tiling: AttentionTiling,
): number {
  if (kernel === "forward") return kernelWorkgroupBytes("forward", headDim, tiling);
  return Math.max(
    kernelWorkgroupBytes("dkdv", headDim, tiling),
    kernelWorkgroupBytes("dq", headDim, tiling),
  );
}

/** Workgroup invocations of a kernel family (its largest kernel). */
export function workgroupThreads(
  tiling: AttentionTiling,
  kernel: TilingKernel = "forward",
  headDim = 4,
): number {
  if (kernel === "forward") return kernelLayout("forward", headDim, tiling).threads;
  return Math.max(
    kernelLayout("dkdv", headDim, tiling).threads,
    kernelLayout("dq", headDim, tiling).threads,
  );
}

/** Device limits the tiling depends on. */
export interface TilingLimits {
  /** `maxComputeWorkgroupStorageSize`. */
  maxComputeWorkgroupStorageSize: number;
  /** `maxComputeInvocationsPerWorkgroup`. */
  maxComputeInvocationsPerWorkgroup: number;
  /** `maxComputeWorkgroupSizeX`. */
  maxComputeWorkgroupSizeX: number;
}

/**
 * Workgroup loads per FMA of the hot loops of one kernel (a `vec4` load counts
 * one load, a `vec4` dot product four FMAs): the score loop (S = QKᵀ, and
 * dP = dO·Vᵀ beside it in the backward) and the accumulation loop (P·V,
 * dS·K, or Pᵀ·dO and dSᵀ·Q).
 */
export function loopLoadsPerFma(
  kernel: AttentionKernelName,
  headDim: number,
  tiling: AttentionTiling,
): { score: number; accumulate: number } {
  const { rows: rm, cols: rn, chunks: cv } = kernelLayout(kernel, headDim, tiling);
  // Per vec4 step of the head dimension: rm + rn vec4 loads feed 4·rm·rn FMAs
  // (the backward does S and dP in the same loop: twice the loads, twice the FMAs).
  const score = (rm + rn) / (4 * rm * rn);
  // Per 4 streamed rows: rm vec4 loads of P (or dS) and 4·cv of V (or K) feed 16·rm·cv FMAs;
  // dK/dV reads P and dS, dO and Q, and accumulates two outputs.
  const accumulate = (rm + 4 * cv) / (16 * rm * cv);
  return { score, accumulate };
}

function invocationLimit(limits: TilingLimits): number {
  return Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
}

/** Why `tiling` is malformed for `kernel`, or undefined when it is well formed. */
function shapeProblem(kernel: TilingKernel, tiling: AttentionTiling): string | undefined {
  for (const field of ["queryTile", "keyTile", "threadsPerRow"] as const) {
    const value = tiling[field];
    if (!Number.isInteger(value) || value < 1 || value > 1 << 14) {
      return `${field} must be an integer in 1..16384, got ${value}`;
    }
  }
  const rows = rowsPerThreadOf(tiling);
  if (!Number.isInteger(rows) || rows < 1 || rows > 8) {
    return `rowsPerThread must be an integer in 1..8, got ${rows}`;
  }
  const { queryTile: br, keyTile: bc, threadsPerRow: tc } = tiling;
  // The score block's columns and the P/dS tiles are read as vec4 along the streamed tile.
  const streamed = kernel === "forward" ? [["keyTile", bc]] : [["keyTile", bc], ["queryTile", br]];
  for (const [name, value] of streamed as [string, number][]) {
    if (value % 4 !== 0) return `${name} ${value} must be a multiple of 4`;
    if (value % tc !== 0) return `${name} ${value} must be a multiple of threadsPerRow ${tc}`;
  }
  const owned = kernel === "forward" ? [["queryTile", br]] : [["queryTile", br], ["keyTile", bc]];
  for (const [name, value] of owned as [string, number][]) {
    if (value % rows !== 0) return `${name} ${value} must be a multiple of rowsPerThread ${rows}`;
  }
  return undefined;
}

const TILE_SIZES = [64, 32, 16, 8, 4];
const THREADS_PER_ROW = [32, 16, 8, 4, 2, 1];
/** f32 accumulators per thread above which registers spill on most GPUs. */
const ACCUMULATOR_BUDGET = 64;
/** Invocations per workgroup above which the register blocks get too thin. */
const MAX_THREADS = 256;

interface Candidate {
  tiling: Required<AttentionTiling>;
  scoreLoads: number;
  reuse: number;
  threads: number;
  fewestThreads: number;
  accumulators: number;
}

/**
 * The best tiling the limits allow for `kernel` and `headDim`: among the
 * tilings that fit the workgroup memory and invocation limits and keep each
 * thread's accumulators within 64 registers, the first by (score loop at most
 * 0.25 workgroup loads per FMA; at least 64 invocations in every kernel; largest reused tile — Br for the forward, the
 * smaller of Br and Bc for the backward, so K/V or Q/dO are re-read least;
 * fewest loads per FMA; then more invocations, up
 * to 256). `maxTile` caps Br and Bc.
 */
export function chooseTiling(
  limits: TilingLimits,
  kernel: TilingKernel,
  headDim: number,
  maxTile = 64,
): Required<AttentionTiling> {
  const invocations = Math.min(invocationLimit(limits), MAX_THREADS);
  const candidates: Candidate[] = [];
  for (const br of TILE_SIZES) {
    for (const bc of TILE_SIZES) {
      if (br > maxTile || bc > maxTile) continue;
      for (const tc of THREADS_PER_ROW) {
        for (const rows of [4, 2, 1]) {
          const tiling = { queryTile: br, keyTile: bc, threadsPerRow: tc, rowsPerThread: rows };
          if (shapeProblem(kernel, tiling) !== undefined) continue;
          if (workgroupBytes(kernel, headDim, tiling) > limits.maxComputeWorkgroupStorageSize) {
            continue;
          }
          const threads = workgroupThreads(tiling, kernel, headDim);
          if (threads > invocations) continue;
          const names: AttentionKernelName[] = kernel === "forward" ? ["forward"] : ["dkdv", "dq"];
          const scoreLoads = Math.max(
            ...names.map((n) => loopLoadsPerFma(n, headDim, tiling).score),
          );
          const accumulators = Math.max(
            ...names.map((n) => kernelLayout(n, headDim, tiling).accumulators),
          );
          const reuse = kernel === "forward" ? br : Math.min(br, bc);
          const fewestThreads = Math.min(
            ...names.map((n) => kernelLayout(n, headDim, tiling).threads),
          );
          candidates.push({ tiling, scoreLoads, reuse, threads, fewestThreads, accumulators });
        }
      }
    }
  }
  if (candidates.length === 0) {
    throw new RangeError(
      `attention: head_dim ${headDim} does not fit ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory even with 4×4 tiles`,
    );
  }
  const inBudget = candidates.filter((c) => c.accumulators <= ACCUMULATOR_BUDGET);
  // Nothing within the register budget (a large head dimension on a small limit): spill least.
  if (inBudget.length === 0) candidates.sort((x, y) => x.accumulators - y.accumulators);
  const pool = inBudget.length > 0 ? inBudget : candidates.slice(0, 1);
  pool.sort((x, y) =>
    Number(y.scoreLoads <= 0.25) - Number(x.scoreLoads <= 0.25) ||
    Number(y.fewestThreads >= 64) - Number(x.fewestThreads >= 64) ||
    y.reuse - x.reuse ||
    x.scoreLoads - y.scoreLoads ||
    y.threads - x.threads ||
    y.tiling.queryTile * y.tiling.keyTile - x.tiling.queryTile * x.tiling.keyTile
  );
  return pool[0]!.tiling;
}

/** Throws a `RangeError` when a tiling is malformed or exceeds the device limits. */
export function checkTiling(
  limits: TilingLimits,
  kernel: TilingKernel,
  headDim: number,
  tiling: AttentionTiling,
): void {
  const problem = shapeProblem(kernel, tiling);
  if (problem !== undefined) throw new RangeError(`attention tiling (${kernel}): ${problem}`);
  const bytes = workgroupBytes(kernel, headDim, tiling);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(
      `attention tiling ${tiling.queryTile}×${tiling.keyTile} (${kernel}, head_dim ${headDim}) needs ${bytes} bytes of workgroup memory; device allows ${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  const threads = workgroupThreads(tiling, kernel, headDim);
  const invocations = invocationLimit(limits);
  if (threads > invocations) {
    throw new RangeError(
      `attention tiling ${tiling.queryTile}×${tiling.keyTile}×${tiling.threadsPerRow} launches ${threads} threads per workgroup; device allows ${invocations}`,
    );
  }
}
