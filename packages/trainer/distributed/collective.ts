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
  /** Calls `onNotice(sourceRank, text)` for each {@link sendNotice} to this rank, in the background. */
  listenForNotices(onNotice: (rank: number, text: string) => void): void;
  /** Sends a short text to rank `dest` (default 0) without waiting for it. */
  sendNotice(text: string, dest?: number): void;
  /** Stops {@link listenForNotices}. */
  stopNotices(): Promise<void>;
  /** Ends every rank of the job, printing `message` first. */
  abort(message: string, code?: number): never;
}
