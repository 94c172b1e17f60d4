/**
 * What data-parallel training needs from a communicator. {@link Mpi}
 * implements it over `MPI_COMM_WORLD`.
 *
 * @module
 */

/** Collectives over a fixed group of ranks; every rank must make the same calls in order. */
export interface Collective {
  /** This process's rank, 0 … size − 1. */
  readonly rank: number;
  /** Number of ranks. */
  readonly size: number;
  /** Element-wise sum over ranks. */
  allreduceSum<T extends Float32Array | Float64Array>(values: T): Promise<T>;
  /** Rank-ordered concatenation of every rank's values (lengths may differ). */
  allgather(values: Float32Array): Promise<{ data: Float32Array; offsets: number[] }>;
  /** Rank `root`'s text on every rank. */
  broadcastText(text: string, root?: number): Promise<string>;
  /** Every rank's text, in rank order. */
  allgatherText(text: string): Promise<string[]>;
  /** Ends every rank of the job, printing `message` first. */
  abort(message: string, code?: number): never;
}
