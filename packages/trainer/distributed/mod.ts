/**
 * `@irforge/trainer/distributed`: data-parallel training on MPI — the MPI
 * binding, the data-parallel step, the cross-rank embedding gather, the
 * `mpirun` launcher and rank 0's exclusive run directory.
 *
 * @example
 * ```ts
 * import { DataParallel, launchedByMpi, Mpi } from "@irforge/trainer/distributed";
 * const dp = launchedByMpi() ? new DataParallel(Mpi.init()) : undefined;
 * ```
 *
 * @module
 */

export * from "./collective.ts";
export * from "./mpi.ts";
export * from "./data_parallel.ts";
export * from "./follower_run.ts";
export * from "./launch.ts";
export * from "./join.ts";
export * from "./gather.ts";
