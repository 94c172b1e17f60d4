/**
 * The kernel lab's design counts: what a kernel must do (FLOPs, the fewest
 * bytes the problem must move) and what its tiling makes it do (global bytes
 * read and written, workgroup-memory loads per FMA, workgroups launched and
 * how many waves of the adapter they fill). They are computed, not measured,
 * so they judge a design on any adapter, a CPU one included.
 *
 * @module
 */

/** Counts of one kernel variant on one problem. */
export interface KernelCounts {
  /** Floating-point operations the problem needs (an FMA counts 2). */
  flops: number;
  /** Fewest bytes any kernel must move: each input read once, each output written once. */
  minBytes: number;
  /** Bytes this variant reads from global memory (tiles re-read across workgroups included). */
  globalReadBytes: number;
  /** Bytes this variant writes to global memory. */
  globalWriteBytes: number;
  /**
   * Workgroup-memory loads per FMA in the hot loop (0 when the kernel does no
   * FMA out of workgroup memory): lower means more arithmetic per load.
   */
  workgroupLoadsPerFma: number;
  /** Workgroups launched. */
  workgroups: number;
  /** Threads per workgroup. */
  threadsPerWorkgroup: number;
  /** Bytes of workgroup memory each workgroup declares. */
  workgroupBytes: number;
}

/** How many workgroups an adapter runs at once, and how that was estimated. */
export interface WaveEstimate {
  /** Workgroups resident at once across the adapter. */
  workgroupsPerWave: number;
  /** Multiprocessors (SMs / CUs / CPU threads) assumed. */
  multiprocessors: number;
  /** Workgroups resident per multiprocessor. */
  perMultiprocessor: number;
  /** One sentence: where the numbers come from. */
  basis: string;
}

/** Per-multiprocessor resources of one known GPU family. */
interface KnownGpu {
  pattern: RegExp;
  name: string;
  multiprocessors: number;
  threads: number;
  sharedBytes: number;
  maxBlocks: number;
}

// Public datasheet figures (SM count, max resident threads, shared memory per SM, max blocks).
const KNOWN_GPUS: KnownGpu[] = [
  {
    pattern: /H200|H100.*SXM|GH200/i,
    name: "NVIDIA H100/H200 SXM",
    multiprocessors: 132,
    threads: 2048,
    sharedBytes: 228 * 1024,
    maxBlocks: 32,
  },
  {
    pattern: /H100/i,
    name: "NVIDIA H100 PCIe",
    multiprocessors: 114,
    threads: 2048,
    sharedBytes: 228 * 1024,
    maxBlocks: 32,
  },
  {
    pattern: /A100/i,
    name: "NVIDIA A100",
    multiprocessors: 108,
    threads: 2048,
    sharedBytes: 164 * 1024,
    maxBlocks: 32,
  },
  {
    pattern: /L40|RTX 40|AD10/i,
    name: "NVIDIA Ada",
    multiprocessors: 142,
    threads: 1536,
    sharedBytes: 100 * 1024,
    maxBlocks: 24,
  },
  {
    pattern: /RTX 30|A10\b|GA10/i,
    name: "NVIDIA Ampere (GA10x)",
    multiprocessors: 84,
    threads: 1536,
    sharedBytes: 100 * 1024,
    maxBlocks: 16,
  },
];

/** What {@link estimateWave} needs to know of the adapter. */
export interface AdapterForWave {
  /** Adapter description (e.g. "NVIDIA H200"). */
  description: string;
  /** Whether the adapter runs on the CPU (lavapipe, llvmpipe, SwiftShader). */
  isCpuAdapter: boolean;
}

/**
 * Workgroups resident at once for a kernel of `threads` threads and
 * `workgroupBytes` of workgroup memory: the multiprocessor count of a known
 * GPU (datasheet) times the workgroups one multiprocessor holds (limited by
 * threads, shared memory and the block limit; registers are not modelled).
 * A CPU adapter runs one workgroup per CPU thread; an unknown GPU is assumed
 * to have 64 multiprocessors of 2048 threads and 100 KiB, and says so.
 */
export function estimateWave(
  adapter: AdapterForWave,
  threads: number,
  workgroupBytes: number,
  cpuThreads = typeof navigator !== "undefined" ? navigator.hardwareConcurrency ?? 1 : 1,
): WaveEstimate {
  if (adapter.isCpuAdapter) {
    return {
      workgroupsPerWave: cpuThreads,
      multiprocessors: cpuThreads,
      perMultiprocessor: 1,
      basis: `CPU adapter: one workgroup per CPU thread (${cpuThreads})`,
    };
  }
  const known = KNOWN_GPUS.find((g) => g.pattern.test(adapter.description));
  const gpu = known ?? {
    name: "unknown GPU (assumed)",
    multiprocessors: 64,
    threads: 2048,
    sharedBytes: 100 * 1024,
    maxBlocks: 32,
  };
  const byThreads = Math.floor(gpu.threads / Math.max(1, threads));
  const byShared = workgroupBytes > 0 ? Math.floor(gpu.sharedBytes / workgroupBytes) : Infinity;
  const perMultiprocessor = Math.max(0, Math.min(byThreads, byShared, gpu.maxBlocks));
  return {
    workgroupsPerWave: perMultiprocessor * gpu.multiprocessors,
    multiprocessors: gpu.multiprocessors,
    perMultiprocessor,
    basis:
      `${gpu.name}: ${gpu.multiprocessors} multiprocessors × min(${gpu.threads} threads / ${threads}, ` +
      `${Math.round(gpu.sharedBytes / 1024)} KiB / ${
        (workgroupBytes / 1024).toFixed(1)
      } KiB, ${gpu.maxBlocks} blocks)` +
      " resident workgroups; registers not modelled",
  };
}

/** Waves a launch of `workgroups` fills (fractional: 0.3 means 70% of the adapter idles). */
export function waves(workgroups: number, wave: WaveEstimate): number {
  return wave.workgroupsPerWave > 0 ? workgroups / wave.workgroupsPerWave : Infinity;
}
