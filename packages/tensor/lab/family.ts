/**
 * The kernel lab's registry, in the spirit of llm.c's `dev/cuda`: each
 * kernel family (its generator and variants live beside its op, with a
 * float64 reference and a test running every variant on odd and aligned
 * shapes) registers here the cases the benchmark times: for each kernel,
 * variant and problem, the design counts and a recorder. `bench/kernels.ts`
 * walks {@link labFamilies}; a test checks every kernel of the package is
 * covered.
 *
 * @module
 */

import type { Device } from "../device.ts";
import type { KernelCounts } from "./counts.ts";

/** Problem sizes: small ones for CPU adapters, the shapes for large GPUs. */
export type LabScale = "cpu" | "gpu";

/** Inputs of one case, allocated; `record` records the work (no readback). */
export interface LabRun {
  /** Records the case's launches (the timed kernel and whatever it needs). */
  record(): void;
  /** Frees the inputs. */
  dispose(): void;
}

/** One kernel × variant × problem. */
export interface LabCase {
  /** The `defineKernel` name timed (GPU timestamps count only its dispatches). */
  kernel: string;
  /** Readable variant (`default` for kernels with one). */
  variant: string;
  /** Readable problem. */
  problem: string;
  /** Design counts of this variant on this problem. */
  counts: KernelCounts;
  /** Allocates the inputs. */
  prepare(): LabRun;
}

/** A family: related kernels and their cases. */
export interface LabFamily {
  /** Family name (`matmul`, `attention`, `rows`, …). */
  name: string;
  /** Where its generator, reference and variant test live. */
  files: string;
  /** The kernel names it covers. */
  kernels: readonly string[];
  /** Its cases at `scale` on `device` (variants the device cannot run are left out). */
  cases(scale: LabScale, device: Device): LabCase[];
  /**
   * Kernels that need an adapter feature: why `device` cannot run them
   * (`undefined` when it can). Such a kernel has no case there.
   */
  requirements?: Readonly<Record<string, (device: Device) => string | undefined>>;
}

const families = new Map<string, LabFamily>();

/** Registers `family` (once per name). */
export function registerLabFamily(family: LabFamily): LabFamily {
  if (families.has(family.name)) throw new Error(`lab family "${family.name}" registered twice`);
  families.set(family.name, family);
  return family;
}

/** Registered families, in registration order. */
export function labFamilies(): LabFamily[] {
  return [...families.values()];
}

/** Counts of a memory-bound kernel: no FMA loop out of workgroup memory. */
export function streamingCounts(options: {
  flops: number;
  readBytes: number;
  writeBytes: number;
  workgroups: number;
  threads: number;
  workgroupBytes?: number;
  /** Bytes actually read when the kernel re-reads inputs (default `readBytes`). */
  globalReadBytes?: number;
}): KernelCounts {
  return {
    flops: options.flops,
    minBytes: options.readBytes + options.writeBytes,
    globalReadBytes: options.globalReadBytes ?? options.readBytes,
    globalWriteBytes: options.writeBytes,
    workgroupLoadsPerFma: 0,
    workgroups: options.workgroups,
    threadsPerWorkgroup: options.threads,
    workgroupBytes: options.workgroupBytes ?? 0,
  };
}
