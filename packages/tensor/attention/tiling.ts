/**
 * Tile sizes of the fused attention kernels and how much workgroup memory they
 * need. Tiles are parameters: {@linkcode chooseTiling} picks the largest that fit
 * the device's limits; pass your own to tune on a real GPU.
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
   * Threads cooperating on one row (a query row in forward and dQ, a key row in
   * dK/dV): they split the tile's scores and the head dimension between them.
   */
  threadsPerRow: number;
}

/** Which kernel family a tiling is for (they differ in workgroup memory). */
export type TilingKernel = "forward" | "backward";

/** Bytes of workgroup memory a kernel family needs for `headDim` and `tiling`. */
export function workgroupBytes(
  kernel: TilingKernel,
  headDim: number,
  tiling: Pick<AttentionTiling, "queryTile" | "keyTile">,
): number {
  const { queryTile: br, keyTile: bc } = tiling;
  if (kernel === "forward") {
    // query tile, one K/V tile (reused for K then V), scores, key metadata, list bounds
    return 4 * (br * headDim + bc * headDim + br * bc) + 16 * bc + 16;
  }
  // Q, dO, K, V tiles, probabilities and dS, metadata and row stats (max of dQ and dK/dV kernels)
  return 4 * (2 * br * headDim + 2 * bc * headDim + 2 * br * bc) + 24 * br + 16 * bc + 16;
}

/** Workgroup invocations a tiling launches in a kernel family. */
export function workgroupThreads(tiling: AttentionTiling): number {
  return Math.max(tiling.queryTile, tiling.keyTile) * tiling.threadsPerRow;
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

const TILE_SIZES = [64, 32, 16, 8, 4, 2, 1];

/**
 * The largest tiles (by Br·Bc, then preferring Br ≥ Bc) that fit the workgroup
 * memory limit, capped at 32 so the grid keeps enough workgroups; then as many
 * threads per row (power of two, ≤ 16) as the invocation limit allows.
 */
export function chooseTiling(
  limits: TilingLimits,
  kernel: TilingKernel,
  headDim: number,
  maxTile = 32,
): AttentionTiling {
  const candidates: [number, number][] = [];
  for (const br of TILE_SIZES) {
    for (const bc of TILE_SIZES) {
      if (br <= maxTile && bc <= maxTile) candidates.push([br, bc]);
    }
  }
  candidates.sort((x, y) =>
    y[0] * y[1] - x[0] * x[1] || Math.abs(x[0] - x[1]) - Math.abs(y[0] - y[1]) || y[0] - x[0]
  );
  const invocations = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  for (const [br, bc] of candidates) {
    const tiling = { queryTile: br, keyTile: bc };
    if (workgroupBytes(kernel, headDim, tiling) > limits.maxComputeWorkgroupStorageSize) continue;
    let threadsPerRow = 16;
    while (threadsPerRow > 1 && Math.max(br, bc) * threadsPerRow > invocations) threadsPerRow /= 2;
    return { queryTile: br, keyTile: bc, threadsPerRow };
  }
  throw new RangeError(
    `attention: head_dim ${headDim} does not fit ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory even with 1×1 tiles`,
  );
}

/** Throws a `RangeError` when a tiling is malformed or exceeds the device limits. */
export function checkTiling(
  limits: TilingLimits,
  kernel: TilingKernel,
  headDim: number,
  tiling: AttentionTiling,
): void {
  for (const field of ["queryTile", "keyTile", "threadsPerRow"] as const) {
    const value = tiling[field];
    if (!Number.isInteger(value) || value < 1 || value > 1 << 14) {
      throw new RangeError(
        `attention tiling: ${field} must be an integer in 1..16384, got ${value}`,
      );
    }
  }
  const bytes = workgroupBytes(kernel, headDim, tiling);
  if (bytes > limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(
      `attention tiling ${tiling.queryTile}×${tiling.keyTile} (${kernel}, head_dim ${headDim}) needs ${bytes} bytes of workgroup memory; device allows ${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  const threads = workgroupThreads(tiling);
  const invocations = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  if (threads > invocations) {
    throw new RangeError(
      `attention tiling ${tiling.queryTile}×${tiling.keyTile}×${tiling.threadsPerRow} launches ${threads} threads per workgroup; device allows ${invocations}`,
    );
  }
}
