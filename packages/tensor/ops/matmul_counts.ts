/**
 * Design counts of a routed matmul (the kernel lab's {@link KernelCounts}):
 * what the problem needs (FLOPs, fewest bytes) and what a route — a kernel
 * variant plus a split-K factor — makes the GPU do: bytes requested from
 * global memory by the tiling (A re-read once per column tile, B once per
 * row tile, split-K partials written and read back), workgroup-memory loads
 * per FMA, workgroups launched, and how many waves of an adapter they fill.
 *
 * The counts are computed, not measured: they say why a routing choice
 * should pay on any adapter, a CPU one included.
 *
 * @example Counts of the down-projection product, unsplit and split by 2
 * ```ts
 * import { matmulCounts, matmulWave } from "./matmul_counts.ts";
 * import { LARGE_VARIANT } from "./matmul_table.ts";
 *
 * const shape = { M: 8192, N: 768, K: 2048, transB: true };
 * const h200 = { description: "NVIDIA H200", isCpuAdapter: false };
 * const wave = matmulWave(h200, LARGE_VARIANT);
 * const one = matmulCounts({ variant: LARGE_VARIANT, splitK: 1 }, shape);
 * const two = matmulCounts({ variant: LARGE_VARIANT, splitK: 2 }, shape);
 * console.log(one.workgroups / wave.workgroupsPerWave, two.workgroups / wave.workgroupsPerWave);
 * ```
 *
 * @module
 */

import {
  type AdapterForWave,
  estimateWave,
  type KernelCounts,
  type WaveEstimate,
} from "../lab/counts.ts";
import { type MatmulVariant, variantThreads, variantWorkgroupBytes } from "./matmul_kernels.ts";
import type { MatmulShape } from "./matmul_table.ts";

/** A routed matmul: the kernel variant and how many K ranges the product is split into. */
export interface MatmulRoute {
  /** The product kernel's variant. */
  variant: MatmulVariant;
  /**
   * Requested split-K factor (1: no split). The effective number of splits is
   * {@link splitPlan}'s: K ranges are whole K tiles, so it may be lower.
   */
  splitK: number;
}

/** How a split-K product cuts K. */
export interface SplitPlan {
  /** K per split: a multiple of the variant's K tile (vec4 loads along K stay aligned). */
  kChunk: number;
  /** Non-empty splits: ⌈K / kChunk⌉ (≤ the requested factor). */
  splits: number;
}

/** The K ranges of splitting `K` into (at most) `splitK` parts of whole `bk` tiles. */
export function splitPlan(K: number, splitK: number, bk: number): SplitPlan {
  const want = Math.max(1, Math.floor(splitK));
  const kChunk = Math.max(bk, Math.ceil(Math.ceil(K / want) / bk) * bk);
  return { kChunk, splits: Math.max(1, Math.ceil(K / kChunk)) };
}

/** A matmul problem as the counts see it. */
export interface MatmulCountsProblem extends MatmulShape {
  /** Which operand is one 2-D matrix shared by every batch entry (read once per entry's tiles). */
  broadcast?: "a" | "b";
  /** A bias row is added in the epilogue (read per output element). */
  bias?: boolean;
  /** The product is added to C's old value (split bindings along K: C is read as well). */
  accumulate?: boolean;
}

/** Counts of each pass of a route: the product and, when split, the reduction. */
export interface MatmulPassCounts {
  /** The product kernel (with a split, it writes partial sums to scratch). */
  product: KernelCounts;
  /** The split-K reduction pass, when the route splits. */
  reduce?: KernelCounts;
  /** The effective split. */
  split: SplitPlan;
}

/** Threads per workgroup of the split-K reduction pass. */
export const REDUCE_THREADS = 256;

const bytesOf = (t: "f32" | "f16" | undefined) => (t === "f16" ? 2 : 4);

/**
 * Counts of each pass of `route` on `problem`. Global bytes are what the
 * kernels request (L2 or DRAM): each workgroup reads its A rows and B
 * columns over its K range, so A is read once per column tile and B once
 * per row tile (a split partitions K, so it adds no operand reads); the
 * epilogue reads bias (and C when accumulating) per output element; a split
 * writes one f32 partial per output per split, which the reduction reads
 * back in fixed order before writing C once.
 */
export function matmulPassCounts(
  route: MatmulRoute,
  problem: MatmulCountsProblem,
): MatmulPassCounts {
  const v = route.variant;
  const batch = problem.batch ?? 1;
  const { M, N, K } = problem;
  const split = splitPlan(K, route.splitK, v.bk);
  const outputs = batch * M * N;
  const tilesM = Math.ceil(M / v.bm), tilesN = Math.ceil(N / v.bn);
  const ea = bytesOf(problem.aType), eb = bytesOf(problem.bType);
  const aRead = tilesN * batch * M * K * ea;
  const bRead = tilesM * batch * N * K * eb;
  const epilogueReads = (problem.bias ? outputs * 4 : 0) + (problem.accumulate ? outputs * 4 : 0);
  const flops = 2 * outputs * K;
  const aElements = (problem.broadcast === "a" ? 1 : batch) * M * K;
  const bElements = (problem.broadcast === "b" ? 1 : batch) * K * N;
  const minBytes = aElements * ea + bElements * eb + outputs * 4 + (problem.bias ? N * 4 : 0) +
    (problem.accumulate ? outputs * 4 : 0);
  const ga = v.tm / 4, gb = v.tn / 4;
  const product: KernelCounts = {
    flops,
    minBytes,
    globalReadBytes: aRead + bRead + (split.splits > 1 ? 0 : epilogueReads),
    globalWriteBytes: outputs * 4 * split.splits,
    // Per k step a thread loads tm/4 + tn/4 vec4s of workgroup memory for tm·tn FMAs.
    workgroupLoadsPerFma: (ga + gb) / (v.tm * v.tn),
    workgroups: tilesM * tilesN * batch * split.splits,
    threadsPerWorkgroup: variantThreads(v),
    workgroupBytes: variantWorkgroupBytes(v),
  };
  if (split.splits === 1) return { product, split };
  const width = N % 4 === 0 ? 4 : 1;
  const reduce: KernelCounts = {
    flops: outputs * split.splits,
    minBytes: outputs * 4 * (split.splits + 1),
    globalReadBytes: outputs * 4 * split.splits + epilogueReads,
    globalWriteBytes: outputs * 4,
    workgroupLoadsPerFma: 0,
    workgroups: Math.ceil(outputs / width / REDUCE_THREADS),
    threadsPerWorkgroup: REDUCE_THREADS,
    workgroupBytes: 0,
  };
  return { product, reduce, split };
}

/**
 * Counts of the whole route: the problem's FLOPs and fewest bytes, global
 * bytes of both passes, and the product pass's workgroup-memory loads per
 * FMA, workgroups, threads and workgroup memory (what the waves are made of;
 * the reduction is a short elementwise pass).
 */
export function matmulCounts(route: MatmulRoute, problem: MatmulCountsProblem): KernelCounts {
  const { product, reduce } = matmulPassCounts(route, problem);
  return {
    ...product,
    globalReadBytes: product.globalReadBytes + (reduce?.globalReadBytes ?? 0),
    globalWriteBytes: product.globalWriteBytes + (reduce?.globalWriteBytes ?? 0),
  };
}

/**
 * Estimated 32-bit registers per thread of `v`: the tm·tn accumulators, one
 * K step's operand fragments (tm + tn), the staged tile loads held between
 * global load and workgroup store, and about 24 for indices and addresses.
 * An estimate (the driver's compiler decides), good for ranking variants.
 */
export function estimatedRegisters(v: MatmulVariant): number {
  const threads = variantThreads(v);
  const staged = (rows: number) => Math.ceil((rows * v.bk) / threads / 4) * 4;
  return v.tm * v.tn + v.tm + v.tn + staged(v.bm) + staged(v.bn) + 24;
}

/** Registers per multiprocessor assumed for GPUs (64 Ki 32-bit: every NVIDIA GPU since Volta). */
export const REGISTERS_PER_MULTIPROCESSOR = 65536;

/**
 * Workgroups of `v` an adapter runs at once: the lab's {@link estimateWave}
 * (threads, workgroup memory, block limit), further limited on GPUs by the
 * register file ({@link estimatedRegisters}, allocated per thread in
 * multiples of 8 over {@link REGISTERS_PER_MULTIPROCESSOR}); without that
 * limit an 8×8-per-thread variant would seem to hold 2048 threads per
 * multiprocessor, which its ~112 registers per thread do not allow.
 */
export function matmulWave(
  adapter: AdapterForWave,
  v: MatmulVariant,
  cpuThreads?: number,
): WaveEstimate {
  const threads = variantThreads(v);
  const wave = estimateWave(adapter, threads, variantWorkgroupBytes(v), cpuThreads);
  if (adapter.isCpuAdapter) return wave;
  const regs = Math.min(255, Math.ceil(estimatedRegisters(v) / 8) * 8);
  const byRegisters = Math.floor(
    REGISTERS_PER_MULTIPROCESSOR / (regs * Math.ceil(threads / 32) * 32),
  );
  if (byRegisters >= wave.perMultiprocessor) return wave;
  const perMultiprocessor = Math.max(1, byRegisters);
  return {
    workgroupsPerWave: perMultiprocessor * wave.multiprocessors,
    multiprocessors: wave.multiprocessors,
    perMultiprocessor,
    basis: `${wave.basis}; but ~${regs} registers per thread (estimate) × ${threads} threads ` +
      `leave room for ${perMultiprocessor} per multiprocessor in 64 Ki registers`,
  };
}
