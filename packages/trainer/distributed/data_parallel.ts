/**
 * Data parallelism for the training loop: every rank holds the whole model,
 * takes its shard of each global batch, and the gradients are all-reduced
 * once per optimizer step through one packed host buffer.
 *
 * Sharding: a recipe built with `per_device_train_batch_size = B` slices
 * micro-batch `i` of an epoch as examples `[i·B, (i+1)·B)` of the epoch's
 * permutation (the same on every rank). Global micro-batch `g` of `N` ranks
 * is recipe micro-batches `g·N … g·N+N−1`, rank `r` taking `g·N + r`, so the
 * global batch is examples `[g·N·B, (g+1)·N·B)`: exactly what one process
 * with `per_device_train_batch_size = N·B` takes. An epoch has
 * `ceil(batches / N)` global micro-batches; in the last one a rank past the
 * end wraps around to the epoch's first micro-batches, as torch's
 * `DistributedSampler` pads, so every rank always has data.
 *
 * Per step, after the local micro-batches' backward passes, each rank packs
 * its gradients and its step scalars (loss, parts, metrics, tokens) into one
 * f32 buffer; `MPI_Allreduce` sums it, and the gradients are averaged (or
 * summed, for tasks whose loss is already the global loss, see
 * {@link TrainingTaskReduction}). The loop then clips to the global norm —
 * every rank holds the same reduced gradients — and steps AdamW, so all
 * ranks stay bit-identical. A two-number all-reduce before it shares "a
 * rank was interrupted", so Ctrl-C/SIGTERM stops every rank after the same
 * step, with one checkpoint.
 *
 * Failure: a rank whose work throws tells rank 0 (a point-to-point notice
 * that rank 0 receives on a helper thread even while it waits in a
 * collective); rank 0 records the error in `run.json` and aborts the job
 * (`MPI_Abort`: the launcher stops every rank). If rank 0 does not act
 * within {@link FAILURE_GRACE_MS}, the failing rank aborts the job itself. A
 * rank that dies is reported by the launcher (MPICH's Hydra ends the job),
 * and the watchdog of every collective (`ddp_timeout`) bounds the rest.
 *
 * @example
 * ```ts
 * import { DataParallel, Mpi } from "@irforge/trainer/distributed";
 * import { train } from "@irforge/trainer";
 * const dp = new DataParallel(Mpi.init());
 * // await train({ config, task, distributed: dp });
 * ```
 *
 * @module
 */

import { concat, noGrad, reshape, Tensor, tidy } from "@irforge/tensor";
import { Rng } from "../rng.ts";
import type { Collective } from "./collective.ts";
import { FollowerRun, type RunWriter } from "./follower_run.ts";

/**
 * How a task's gradients combine over ranks: `mean` (each rank's loss is the
 * mean over its own shard, as DDP), or `sum` (each rank's loss already is the
 * global batch's loss, e.g. in-batch negatives gathered from all ranks, and
 * its gradient reaches only the rows it owns).
 */
export type TrainingTaskReduction = "mean" | "sum";

/** How long a failing rank waits for rank 0 to record its error and end the job. */
export const FAILURE_GRACE_MS = 10_000;

/** What {@link DataParallel.reduceStep} takes from one rank. */
export interface StepContribution {
  /** Trainable parameters, in the optimizer's order (the same on every rank). */
  params: readonly Tensor[];
  /** Names of `scalars` (`train/loss`, …). */
  names: readonly string[];
  /** One-element tensors averaged over ranks; disposed here. */
  scalars: readonly Tensor[];
  /** Host scalars averaged over ranks. */
  host: Record<string, number>;
  /** Tokens this rank processed (summed over ranks). */
  tokens: number;
  /** How gradients combine. */
  reduction: TrainingTaskReduction;
}

/** What every rank gets back from {@link DataParallel.reduceStep}. */
export interface StepTotals {
  /** Every scalar, averaged over ranks. */
  host: Record<string, number>;
  /** Tokens of all ranks. */
  tokens: number;
}

/** Largest chunk read back in one transfer (bytes), below WebGPU's binding limits. */
const READ_CHUNK_BYTES = 64 * 1024 * 1024;

/** Data-parallel training over a {@link Collective} (one rank per GPU). */
export class DataParallel {
  /** The communicator. */
  readonly comm: Collective;
  /** Bytes all-reduced by the last step (gradients and scalars), for logs and benchmarks. */
  lastStepBytes = 0;
  #interruptRequested = false;
  #onSignal = () => {
    this.#interruptRequested = true;
  };
  #signals: Deno.Signal[] = [];
  #run: RunWriter | null = null;

  /** `comm`: the ranks training together. Rank 0 starts listening for failure notices. */
  constructor(comm: Collective) {
    this.comm = comm;
    if (comm.rank === 0 && comm.size > 1) {
      comm.listenForNotices((rank, text) => void this.#peerFailed(rank, text));
    }
  }

  // Rank 0: another rank failed; record its error in the run, then end the job.
  async #peerFailed(rank: number, text: string): Promise<never> {
    const message = `rank ${rank} failed: ${text}`;
    try {
      await this.#run?.finish("failed", new Error(message));
    } finally {
      this.comm.abort(message);
    }
  }

  /**
   * Ends the job because this rank failed with `error` (its own failure,
   * which the other ranks cannot know): another rank tells rank 0, which
   * records it and aborts the job; rank 0 aborts it directly.
   */
  async fail(error: unknown): Promise<never> {
    const message = error instanceof Error ? error.message : String(error);
    const detail = error instanceof Error ? error.stack ?? message : message;
    if (this.leader) return this.comm.abort(detail);
    console.error(`rank ${this.rank}/${this.size}: ${detail}`);
    try {
      this.comm.sendNotice(message, 0);
    } catch {
      // rank 0 unreachable: abort below
    }
    await new Promise((resolve) => setTimeout(resolve, FAILURE_GRACE_MS));
    return this.comm.abort(`${message} (rank 0 did not end the job)`);
  }

  /** Stops rank 0's failure listener (before `MPI_Finalize`). */
  async close(): Promise<void> {
    this.stopListening();
    if (this.comm.rank === 0 && this.comm.size > 1) await this.comm.stopNotices();
  }

  /** This rank. */
  get rank(): number {
    return this.comm.rank;
  }

  /** Number of ranks. */
  get size(): number {
    return this.comm.size;
  }

  /** Whether this rank writes the run directory (rank 0). */
  get leader(): boolean {
    return this.comm.rank === 0;
  }

  /** Global micro-batches per epoch for a recipe with `localBatches` per-device micro-batches. */
  batchesPerEpoch(localBatches: number): number {
    return Math.ceil(localBatches / this.size);
  }

  /** The recipe micro-batch this rank takes for global micro-batch `index` of an epoch. */
  shardIndex(index: number, localBatches: number): number {
    return (index * this.size + this.rank) % localBatches;
  }

  /**
   * This rank's random stream for one micro-batch. The shared stream
   * advances identically on every rank (so rank 0's checkpointed state
   * resumes all of them) however many numbers a recipe draws from the child.
   */
  microBatchRng(shared: Rng): Rng {
    let stream = shared.split();
    for (let r = 0; r < this.rank; r++) stream = stream.split();
    return stream;
  }

  /**
   * Opens the run directory on rank 0 (`open`) and gives the other ranks a
   * {@link FollowerRun} with rank 0's path. If rank 0 cannot open it, every
   * rank throws rank 0's error.
   */
  async openRun<R extends RunWriter>(open: () => Promise<R>): Promise<R | FollowerRun> {
    let run: R | null = null, failure = "";
    if (this.leader) {
      try {
        run = await open();
      } catch (e) {
        failure = e instanceof Error ? e.message : String(e);
      }
    }
    const shared = await this.comm.broadcastText(
      JSON.stringify(run ? { path: run.path } : { error: failure }),
    );
    const message = JSON.parse(shared) as { path?: string; error?: string };
    if (message.error !== undefined) throw new Error(message.error);
    this.#run = run;
    return run ?? new FollowerRun(message.path!);
  }

  /** Listens for SIGINT/SIGTERM; the request is shared at the next step (see {@link agreeInterrupt}). */
  listenForSignals(): void {
    if (this.#signals.length > 0) return;
    this.#signals = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    for (const signal of this.#signals) Deno.addSignalListener(signal, this.#onSignal);
  }

  /** Stops listening for signals. */
  stopListening(): void {
    for (const signal of this.#signals) Deno.removeSignalListener(signal, this.#onSignal);
    this.#signals = [];
  }

  /** Asks every rank to stop after the current step (as a signal would). */
  requestInterrupt(): void {
    this.#interruptRequested = true;
  }

  /** Whether any rank was asked to stop (a signal, {@link requestInterrupt}); every rank agrees. */
  async agreeInterrupt(): Promise<boolean> {
    const flags = await this.comm.allreduceSum(Float32Array.of(this.#interruptRequested ? 1 : 0));
    return flags[0]! > 0;
  }

  /**
   * All-reduces one step: gradients (averaged or summed, written back into
   * each parameter's `.grad`) and scalars (averaged), in one packed buffer.
   */
  async reduceStep(input: StepContribution): Promise<StepTotals> {
    const { params, names, scalars, host, reduction } = input;
    const hostKeys = Object.keys(host).sort();
    const gradSizes = params.map((p) => p.size);
    const gradTotal = gradSizes.reduce((a, b) => a + b, 0);
    const packed = new Float32Array(gradTotal + scalars.length + hostKeys.length + 1);
    // Gradients and GPU scalars, read back in as few transfers as the binding limit allows.
    const pieces: { tensor: Tensor; at: number }[] = [];
    let at = 0;
    params.forEach((p) => {
      if (p.grad) pieces.push({ tensor: p.grad, at });
      at += p.size; // a parameter without a gradient contributes zeros
    });
    scalars.forEach((s) => pieces.push({ tensor: s, at: at++ }));
    await readInto(pieces, packed);
    for (const s of scalars) s.dispose();
    hostKeys.forEach((k) => packed[at++] = host[k]!);
    packed[at] = input.tokens;

    const summed = await this.comm.allreduceSum(packed);
    this.lastStepBytes = packed.byteLength;

    const gradScale = reduction === "mean" ? 1 / this.size : 1;
    let offset = 0;
    params.forEach((p, i) => {
      const n = gradSizes[i]!;
      const values = summed.subarray(offset, offset + n);
      if (gradScale !== 1) { for (let j = 0; j < n; j++) values[j]! *= gradScale; }
      const grad = Tensor.fromArray(values, p.shape).keep();
      p.grad?.dispose();
      p.grad = grad;
      offset += n;
    });
    const totals: Record<string, number> = {};
    names.forEach((name) => totals[name] = summed[offset++]! / this.size);
    hostKeys.forEach((k) => totals[k] = summed[offset++]! / this.size);
    return { host: totals, tokens: summed[offset]! };
  }
}

/** Reads each tensor's values into `out` at its offset, concatenating up to the chunk limit. */
async function readInto(pieces: { tensor: Tensor; at: number }[], out: Float32Array) {
  let start = 0;
  while (start < pieces.length) {
    let end = start, bytes = 0;
    const fits = (i: number) => bytes + pieces[i]!.tensor.size * 4 <= READ_CHUNK_BYTES;
    while (end < pieces.length && (end === start || fits(end))) {
      bytes += pieces[end]!.tensor.size * 4;
      end++;
    }
    const group = pieces.slice(start, end);
    let values: Float32Array;
    if (group.length === 1) values = await group[0]!.tensor.toArray() as Float32Array;
    else {
      const joined = noGrad(() =>
        tidy(() => concat(group.map((p) => reshape(p.tensor, [p.tensor.size])), 0))
      );
      values = await joined.toArray() as Float32Array;
      joined.dispose();
    }
    let k = 0;
    for (const piece of group) {
      out.set(values.subarray(k, k + piece.tensor.size), piece.at);
      k += piece.tensor.size;
    }
    start = end;
  }
}
