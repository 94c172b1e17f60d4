/**
 * Distillation under data parallelism: what phase 2 gathers across ranks and
 * how the ranks agree on the distill run directory.
 *
 * Phase 2's InfoNCE takes its in-batch negatives from every rank, as the
 * bi-encoder does (Trove's cross-device negatives): {@link gatherPhase2Batch}
 * all-gathers the student's query and passage rows (this rank's rows keep
 * their gradient, the others' are constants) together with the labels and
 * the teacher's rows, in one collective. Every rank then computes the loss
 * of the whole global batch — InfoNCE and the query/passage MSE — and its
 * gradient reaches only its own rows, so the task's gradients are summed over
 * ranks (`gradientReduction: "sum"`), giving exactly one process's gradient.
 *
 * @example
 * ```ts ignore
 * const batch = await gatherPhase2Batch(comm, { q, p, labels, tq, tp });
 * ```
 *
 * @module
 */

import type { Tensor } from "@irforge/tensor";
import type { Collective } from "../distributed/collective.ts";
import type { DataParallel } from "../distributed/data_parallel.ts";
import { allGatherRows } from "../distributed/gather.ts";

/** One rank's phase-2 micro-batch, or the global batch gathered from every rank. */
export interface Phase2Batch {
  /** Student query embeddings `[Q, d]`. */
  q: Tensor;
  /** Student passage embeddings `[Q·G, d]`, group-major. */
  p: Tensor;
  /** 1 for each query's positive, 0 for its negatives, one per passage row. */
  labels: number[];
  /** Teacher query embeddings, row-major (null without a teacher). */
  tq: Float32Array | null;
  /** Teacher passage embeddings, row-major (null without a teacher). */
  tp: Float32Array | null;
}

/**
 * The global phase-2 batch: every rank's rows in rank order (what one
 * process with the whole batch holds), gathered in one collective.
 */
export async function gatherPhase2Batch(
  comm: Collective,
  local: Phase2Batch,
): Promise<Phase2Batch> {
  const tq = local.tq ?? new Float32Array(0), tp = local.tp ?? new Float32Array(0);
  const extra = new Float32Array(local.labels.length + tq.length + tp.length);
  extra.set(local.labels), extra.set(tq, local.labels.length);
  extra.set(tp, local.labels.length + tq.length);
  const gathered = await allGatherRows(comm, [local.q, local.p], extra);
  const [queryRows, passageRows] = gathered.rowOffsets;
  const labels: number[] = [], teacherQ: number[][] = [], teacherP: number[][] = [];
  gathered.extras.forEach((values, r) => {
    const nq = queryRows![r + 1]! - queryRows![r]!, np = passageRows![r + 1]! - passageRows![r]!;
    labels.push(...values.subarray(0, np));
    const teacherValues = values.length - np;
    // The teacher's width follows from what this rank sent: queries and passages share it.
    const width = nq + np > 0 ? teacherValues / (nq + np) : 0;
    teacherQ.push([...values.subarray(np, np + nq * width)]);
    teacherP.push([...values.subarray(np + nq * width)]);
  });
  const flat = (parts: number[][]) => Float32Array.from(parts.flat());
  return {
    q: gathered.tensors[0]!,
    p: gathered.tensors[1]!,
    labels,
    tq: local.tq ? flat(teacherQ) : null,
    tp: local.tp ? flat(teacherP) : null,
  };
}

/**
 * The distill run directory on every rank: rank 0 makes (or names) it with
 * `make`, the others get its path; an error on rank 0 is thrown on every
 * rank. Every rank takes part (an all-gather), so whatever a rank read
 * before this call was read before rank 0 wrote anything.
 */
export async function openDistillRoot(
  dp: DataParallel | null,
  make: () => Promise<string>,
): Promise<string> {
  if (!dp || dp.size === 1) return await make();
  let message: { path?: string; error?: string } = {};
  if (dp.leader) {
    try {
      message = { path: await make() };
    } catch (e) {
      message = { error: e instanceof Error ? e.message : String(e) };
    }
  }
  const shared = JSON.parse((await dp.comm.allgatherText(JSON.stringify(message)))[0]!) as {
    path?: string;
    error?: string;
  };
  if (shared.error !== undefined) throw new Error(shared.error);
  return shared.path!;
}
