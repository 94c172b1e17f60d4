/**
 * Design counts of the fused attention kernels (see `../lab/counts.ts`): for
 * a forward or backward launch of a tiling on a problem, the FLOPs the
 * problem needs (visible pairs only: 4·D forward, 10·D backward per pair and
 * query head), the fewest bytes any kernel must move, the global bytes this
 * tiling reads and writes (K/V re-read per query tile and head, Q/dO per key
 * tile, mask metadata included), workgroup-memory loads per FMA of the hot
 * loops, workgroups and the workgroup shape. Computed from the tiling, not
 * measured, so they judge a design on any adapter.
 *
 * Variants ({@linkcode AttentionVariant}): f16 storage of q, k, v (and dQ,
 * dK, dV) halves their bytes, f16 out/dO halves theirs; lse, row stats and
 * split partials stay f32. The row reductions are counted apart from the
 * hot loops: barriers per tile, workgroup-memory accesses and subgroup
 * shuffles of the cross-thread row max/sum, so the subgroup variant's saving
 * (no partial row-value array, one barrier less per key tile and one less at
 * the end of the forward) shows up in numbers.
 *
 * @example Forward counts of dense causal attention
 * ```ts
 * import { attentionCounts, buildTileTable, causalMask } from "@irforge/tensor/attention";
 *
 * const meta = causalMask({ batch: 1, length: 64 });
 * const tiling = { queryTile: 16, keyTile: 16, threadsPerRow: 4, rowsPerThread: 4 };
 * const table = buildTileTable(meta, 16, 16);
 * const { total } = attentionCounts("forward", {
 *   batch: 1, heads: 4, kvHeads: 2, seqLen: 64, headDim: 32,
 *   visiblePairs: 64 * 65 / 2, activeTiles: table.activeCount,
 * }, tiling);
 * console.log(total.flops, total.workgroupLoadsPerFma);
 * ```
 *
 * @module
 */

import type { KernelCounts } from "../lab/counts.ts";
import {
  type AttentionKernelName,
  type AttentionTiling,
  kernelLayout,
  kernelWorkgroupBytes,
  loopLoadsPerFma,
} from "./tiling.ts";
import { type AttentionElement, elementBytes } from "./wgsl_blocks.ts";

/** What a launch stores in f16 and whether it reduces rows with subgroups. */
export interface AttentionVariant {
  /** Storage of q, k, v, dQ, dK, dV; default f32. */
  dtype?: AttentionElement;
  /** Storage of out and dO; default f32. */
  outDtype?: AttentionElement;
  /**
   * Subgroup row reductions (forward: row max/sum among a row's threads;
   * row stats: `flatLanes` lanes per row); default false.
   */
  subgroups?: boolean;
  /** Lanes per row of the row-stats kernel on the subgroup path; default 8. */
  flatLanes?: number;
}

/** The problem a launch solves. */
export interface AttentionProblem {
  /** Batch rows (B). */
  batch: number;
  /** Query heads (Hq). */
  heads: number;
  /** Key/value heads (Hkv). */
  kvHeads: number;
  /** Tokens per row (T). */
  seqLen: number;
  /** Head dimension (D). */
  headDim: number;
  /** Visible (query, key) pairs over the batch, per head (`bench/lib/visible_pairs.ts`). */
  visiblePairs: number;
  /** Active (query tile, key tile) pairs over the batch: `buildTileTable(...).activeCount`. */
  activeTiles: number;
}

/** Counts of one kernel of a pass. */
export interface AttentionKernelCounts {
  /** Kernel name (as declared in `kernels.ts`). */
  kernel: string;
  /**
   * The lab's counts; `flops` is this kernel's share of the work over visible
   * pairs (forward 4·D, dK/dV 8·D, dQ 6·D per pair and query head: the
   * backward kernels both recompute S and dP).
   */
  counts: KernelCounts;
  /** FLOPs executed: every pair of every active tile, padded head columns included. */
  executedFlops: number;
  /** Workgroup loads per FMA of the score loop (S, and dP beside it in the backward). */
  scoreLoadsPerFma: number;
  /** Workgroup loads per FMA of the accumulation loop (P·V, dS·K, Pᵀ·dO and dSᵀ·Q). */
  accumulateLoadsPerFma: number;
  /**
   * Workgroup barriers per active tile pair the kernel walks (forward: per key
   * tile; dK/dV: per query tile; dQ: per key tile); 0 for untiled kernels.
   */
  barriersPerTile: number;
  /**
   * Workgroup-memory loads and stores of the cross-invocation row reductions
   * over the launch (the forward's partial row maxima and sums); 0 where a
   * subgroup butterfly does them or no row is shared.
   */
  reductionWorkgroupAccesses: number;
  /** `subgroupShuffleXor` calls of the row reductions over the launch (per invocation summed). */
  reductionShuffles: number;
}

/** Counts of a pass: its kernels and their sum. */
export interface AttentionPassCounts {
  /**
   * The whole pass: FLOPs the problem needs (4·D or 10·D per visible pair and
   * query head), bytes summed over the kernels, loads per FMA weighted by the
   * FMAs of every hot loop, workgroups summed, the largest workgroup.
   */
  total: KernelCounts;
  /** Each kernel launched, in launch order. */
  kernels: AttentionKernelCounts[];
}

const F32 = 4;
const log2 = (n: number) => Math.round(Math.log2(n));
/** Bytes of one token's mask metadata read by a kernel (segment, block, kind). */
const META = 12;

interface Loops {
  loads: number;
  fmas: number;
}

/** Loads and FMAs of the two hot loops of `kernel` on one (query tile, key tile) pair. */
function tileLoops(
  kernel: AttentionKernelName,
  headDim: number,
  tiling: AttentionTiling,
): { score: Loops; accumulate: Loops } {
  const l = kernelLayout(kernel, headDim, tiling);
  // Backward kernels compute S and dP in the score loop, and two products
  // (dV and dK) in the dK/dV accumulation loop.
  const scorePasses = kernel === "forward" ? 1 : 2;
  const accumulatePasses = kernel === "dkdv" ? 2 : 1;
  return {
    score: {
      loads: scorePasses * l.threads * l.d4 * (l.rows + l.cols),
      fmas: scorePasses * l.threads * l.d4 * 4 * l.rows * l.cols,
    },
    accumulate: {
      loads: accumulatePasses * l.threads * (l.streamTile / 4) * (l.rows + 4 * l.chunks),
      fmas: accumulatePasses * l.threads * (l.streamTile / 4) * 16 * l.rows * l.chunks,
    },
  };
}

function kernelEntry(
  name: string,
  kernel: AttentionKernelName | undefined,
  problem: AttentionProblem,
  tiling: AttentionTiling,
  fields: {
    flops: number;
    minBytes: number;
    globalReadBytes: number;
    globalWriteBytes: number;
    workgroups: number;
    threads: number;
    tilePairs: number;
    subgroups?: boolean;
    barriersPerTile?: number;
    reductionWorkgroupAccesses?: number;
    reductionShuffles?: number;
  },
): AttentionKernelCounts & { loops: Loops } {
  let loops: Loops = { loads: 0, fmas: 0 };
  let score = 0, accumulate = 0, bytes = 0;
  if (kernel !== undefined) {
    const perTile = tileLoops(kernel, problem.headDim, tiling);
    loops = {
      loads: fields.tilePairs * (perTile.score.loads + perTile.accumulate.loads),
      fmas: fields.tilePairs * (perTile.score.fmas + perTile.accumulate.fmas),
    };
    ({ score, accumulate } = loopLoadsPerFma(kernel, problem.headDim, tiling));
    bytes = kernelWorkgroupBytes(kernel, problem.headDim, tiling, fields.subgroups);
  }
  return {
    kernel: name,
    counts: {
      flops: fields.flops,
      minBytes: fields.minBytes,
      globalReadBytes: fields.globalReadBytes,
      globalWriteBytes: fields.globalWriteBytes,
      workgroupLoadsPerFma: loops.fmas > 0 ? loops.loads / loops.fmas : 0,
      workgroups: fields.workgroups,
      threadsPerWorkgroup: fields.threads,
      workgroupBytes: bytes,
    },
    executedFlops: 2 * loops.fmas,
    scoreLoadsPerFma: score,
    accumulateLoadsPerFma: accumulate,
    barriersPerTile: fields.barriersPerTile ?? 0,
    reductionWorkgroupAccesses: fields.reductionWorkgroupAccesses ?? 0,
    reductionShuffles: fields.reductionShuffles ?? 0,
    loops,
  };
}

function sumPass(
  flops: number,
  minBytes: number,
  kernels: (AttentionKernelCounts & { loops: Loops })[],
): AttentionPassCounts {
  const sum = (f: (k: AttentionKernelCounts) => number) => kernels.reduce((a, k) => a + f(k), 0);
  const loads = kernels.reduce((a, k) => a + k.loops.loads, 0);
  const fmas = kernels.reduce((a, k) => a + k.loops.fmas, 0);
  return {
    total: {
      flops,
      minBytes,
      globalReadBytes: sum((k) => k.counts.globalReadBytes),
      globalWriteBytes: sum((k) => k.counts.globalWriteBytes),
      workgroupLoadsPerFma: fmas > 0 ? loads / fmas : 0,
      workgroups: sum((k) => k.counts.workgroups),
      threadsPerWorkgroup: Math.max(...kernels.map((k) => k.counts.threadsPerWorkgroup)),
      workgroupBytes: Math.max(...kernels.map((k) => k.counts.workgroupBytes)),
    },
    kernels: kernels.map(({ loops: _, ...k }) => k),
  };
}

/**
 * Design counts of one forward or backward launch of `tiling` on `problem`
 * (`keySplits`: the dK/dV splits of the backward, see `attentionBackward`;
 * `variant`: f16 storage and subgroup reductions).
 * Tiles count whole (a partial last tile is counted as full).
 */
export function attentionCounts(
  pass: "forward" | "backward",
  problem: AttentionProblem,
  tiling: AttentionTiling,
  keySplits = 1,
  variant: AttentionVariant = {},
): AttentionPassCounts {
  const { batch: b, heads: hq, kvHeads: hkv, seqLen: t, headDim: d } = problem;
  // Bytes per stored element: operands (q, k, v and their gradients), out/dO.
  const OP = elementBytes(variant.dtype ?? "f32"), OUT = elementBytes(variant.outDtype ?? "f32");
  const subgroups = variant.subgroups ?? false;
  const { queryTile: br, keyTile: bc } = tiling;
  const queryTiles = Math.ceil(t / br), keyTiles = Math.ceil(t / bc);
  const queryFloats = b * hq * t * d, keyFloats = b * hkv * t * d, rowFloats = b * hq * t;
  const pairsHeads = problem.visiblePairs * hq;
  // Every query head walks the active tile pairs of its batch row.
  const tilePairs = problem.activeTiles * hq;

  if (pass === "forward") {
    const l = kernelLayout("forward", d, tiling);
    const workgroups = queryTiles * hq * b;
    // Row max per key tile and row sum at the end: each thread stores RM
    // partials and reads TC per row (a barrier between), or RM·log₂TC shuffles.
    const exchanges = tilePairs + workgroups;
    const forward = kernelEntry("attention-forward", "forward", problem, tiling, {
      flops: 4 * d * pairsHeads,
      minBytes: OP * (queryFloats + 2 * keyFloats) + OUT * queryFloats + F32 * rowFloats,
      // Q once; K and V per active tile and query head; key metadata and the
      // list entry per active tile; per workgroup the list bounds and each
      // thread's query-row metadata.
      globalReadBytes: OP * queryFloats + tilePairs * (2 * bc * d * OP + bc * META + 4) +
        workgroups * (8 + l.threads * l.rows * META),
      globalWriteBytes: OUT * queryFloats + F32 * rowFloats,
      workgroups,
      threads: l.threads,
      tilePairs,
      subgroups,
      barriersPerTile: subgroups ? 2 : 3,
      reductionWorkgroupAccesses: subgroups
        ? 0
        : exchanges * l.threads * l.rows * (1 + l.threadsPerRow),
      reductionShuffles: subgroups ? exchanges * l.threads * l.rows * log2(l.threadsPerRow) : 0,
    });
    return sumPass(4 * d * pairsHeads, forward.counts.minBytes, [forward]);
  }

  // Reads q, k, v (OP), out, dO (OUT), lse; writes dQ, dK, dV (OP).
  const minBytes = OP * (queryFloats + 2 * keyFloats) + OUT * 2 * queryFloats + F32 * rowFloats +
    OP * (queryFloats + 2 * keyFloats);
  // Row stats: one invocation per row, or `lanes` per row adding by a butterfly.
  const lanes = subgroups ? variant.flatLanes ?? 8 : 1;
  const rowStats = kernelEntry("attention-row-stats", undefined, problem, tiling, {
    flops: 2 * d * rowFloats,
    minBytes: OUT * 2 * queryFloats + F32 * rowFloats + 2 * F32 * rowFloats,
    globalReadBytes: OUT * 2 * queryFloats + F32 * rowFloats,
    globalWriteBytes: 2 * F32 * rowFloats,
    workgroups: Math.ceil(rowFloats * lanes / 64),
    threads: 64,
    tilePairs: 0,
    reductionShuffles: rowFloats * lanes * log2(lanes),
  });
  const kv = kernelLayout("dkdv", d, tiling);
  const dkdvWorkgroups = keyTiles * hkv * b * keySplits;
  // Split partials are f32 whatever the gradients' storage.
  const gradBytes = keySplits > 1 ? F32 : OP;
  const dkdv = kernelEntry("attention-dkdv", "dkdv", problem, tiling, {
    flops: 8 * d * pairsHeads,
    minBytes: OP * (queryFloats + 2 * keyFloats) + OUT * queryFloats + 2 * F32 * rowFloats +
      OP * 2 * keyFloats,
    // K and V once per split; Q, dO, row stats, query metadata and the list
    // entry per active tile and query head; per workgroup the list bounds and
    // each thread's key metadata.
    globalReadBytes: keySplits * OP * 2 * keyFloats +
      tilePairs * (br * d * (OP + OUT) + br * 2 * F32 + br * META + 4) +
      dkdvWorkgroups * (8 + kv.threads * kv.rows * META),
    globalWriteBytes: keySplits * gradBytes * 2 * keyFloats,
    workgroups: dkdvWorkgroups,
    threads: kv.threads,
    tilePairs,
    barriersPerTile: 2,
  });
  const kernels = [rowStats, dkdv];
  if (keySplits > 1) {
    kernels.push(kernelEntry("attention-dkdv-split-sum", undefined, problem, tiling, {
      flops: 2 * (keySplits - 1) * keyFloats,
      minBytes: F32 * 2 * keyFloats * keySplits + OP * 2 * keyFloats,
      globalReadBytes: keySplits * F32 * 2 * keyFloats,
      globalWriteBytes: OP * 2 * keyFloats,
      workgroups: Math.ceil(keyFloats / 64),
      threads: 64,
      tilePairs: 0,
    }));
  }
  const q = kernelLayout("dq", d, tiling);
  const dqWorkgroups = queryTiles * hq * b;
  kernels.push(kernelEntry("attention-dq", "dq", problem, tiling, {
    flops: 6 * d * pairsHeads,
    minBytes: OP * (queryFloats + 2 * keyFloats) + OUT * queryFloats + 2 * F32 * rowFloats +
      OP * queryFloats,
    // Q, dO once; K and V per active tile and query head; key metadata and
    // the list entry per active tile; per workgroup the list bounds and each
    // thread's query metadata and row stats.
    globalReadBytes: (OP + OUT) * queryFloats + tilePairs * (2 * bc * d * OP + bc * META + 4) +
      dqWorkgroups * (8 + q.threads * q.rows * (META + 2 * F32)),
    globalWriteBytes: OP * queryFloats,
    workgroups: dqWorkgroups,
    threads: q.threads,
    tilePairs,
    barriersPerTile: 2,
  }));
  return sumPass(10 * d * pairsHeads, minBytes, kernels);
}
