/**
 * Exact inner-product top-k on the GPU, for dense retrieval evaluation:
 * query × document scores are computed by `matmul` in document chunks
 * sized to fit one storage binding, each chunk's `[Q, C]` scores are read
 * back (the next chunk is already being computed) and merged into per-query
 * top-k lists on the host. Nothing is approximated: the result is the top k
 * of the f32 scores the GPU computed, ties broken by the lower document
 * index, like `@irforge/eval`'s `topK`.
 *
 * Its signature is `@irforge/eval`'s `Searcher`, so `evaluateRetriever`
 * takes it as `search`.
 *
 * @module
 */

import { matmul, maxBindingBytes, noGrad, Tensor } from "@irforge/tensor";
import { type Scored, topK } from "@irforge/eval";

/** Options of {@link exactTopKGpu}. */
export interface GpuTopKOptions {
  /** Most score values read back per chunk (default 4 Mi = 16 MiB). */
  maxScoresPerChunk?: number;
}

/** Merges two lists sorted best first (score desc, index asc) into the best `k`. */
export function mergeTopK(a: readonly Scored[], b: readonly Scored[], k: number): Scored[] {
  const out: Scored[] = [];
  let i = 0, j = 0;
  while (out.length < k && (i < a.length || j < b.length)) {
    const x = a[i], y = b[j];
    if (
      y === undefined || (x !== undefined && (x.score > y.score ||
        (x.score === y.score && x.index < y.index)))
    ) {
      out.push(x!);
      i++;
    } else {
      out.push(y);
      j++;
    }
  }
  return out;
}

/**
 * For each of `numQueries` query rows (row-major `queries`, `dim` wide),
 * the `k` document rows of `documents` with the largest inner product,
 * best first. Same contract as `@irforge/eval`'s `exactTopKCpu`.
 */
export async function exactTopKGpu(
  queries: Float32Array,
  numQueries: number,
  documents: Float32Array,
  numDocuments: number,
  dim: number,
  k: number,
  options: GpuTopKOptions = {},
): Promise<Scored[][]> {
  if (queries.length !== numQueries * dim) {
    throw new RangeError(`queries hold ${queries.length} values, expected ${numQueries} × ${dim}`);
  }
  if (documents.length !== numDocuments * dim) {
    throw new RangeError(
      `documents hold ${documents.length} values, expected ${numDocuments} × ${dim}`,
    );
  }
  const best: Scored[][] = Array.from({ length: numQueries }, () => []);
  if (numQueries === 0 || numDocuments === 0 || k <= 0 || dim === 0) return best;
  const rowLimit = Math.floor(maxBindingBytes() / 4);
  const maxScores = Math.min(options.maxScoresPerChunk ?? 4 * 1024 * 1024, rowLimit);
  // Queries in blocks that fit one binding; documents in chunks whose rows and scores fit.
  const queryRows = Math.max(1, Math.min(numQueries, Math.floor(rowLimit / dim)));
  const docRows = Math.max(
    1,
    Math.min(numDocuments, Math.floor(rowLimit / dim), Math.floor(maxScores / queryRows)),
  );
  const queryBlocks: { start: number; rows: number; tensor: Tensor }[] = [];
  for (let start = 0; start < numQueries; start += queryRows) {
    const rows = Math.min(queryRows, numQueries - start);
    const data = queries.subarray(start * dim, (start + rows) * dim);
    queryBlocks.push({ start, rows, tensor: Tensor.fromArray(data, [rows, dim]) });
  }
  // One chunk's readback is merged while the next chunk computes.
  let pending:
    | { scores: Promise<Float32Array>; q: number; rows: number; d: number; cols: number }
    | null = null;
  const mergePending = async () => {
    if (!pending) return;
    const { q, rows, d, cols } = pending;
    const scores = await pending.scores;
    pending = null;
    for (let r = 0; r < rows; r++) {
      const local = topK(scores.subarray(r * cols, (r + 1) * cols), k);
      for (const hit of local) hit.index += d;
      best[q + r] = mergeTopK(best[q + r]!, local, k);
    }
  };
  try {
    for (let d = 0; d < numDocuments; d += docRows) {
      const cols = Math.min(docRows, numDocuments - d);
      const docs = Tensor.fromArray(documents.subarray(d * dim, (d + cols) * dim), [cols, dim]);
      try {
        for (const block of queryBlocks) {
          const scores = noGrad(() => matmul(block.tensor, docs, { transB: true }));
          const read = scores.toArray().finally(() => scores.dispose()) as Promise<Float32Array>;
          await mergePending();
          pending = { scores: read, q: block.start, rows: block.rows, d, cols };
        }
      } finally {
        docs.dispose();
      }
    }
    await mergePending();
  } finally {
    for (const block of queryBlocks) block.tensor.dispose();
  }
  return best;
}
