/**
 * Cross-rank gathers for data-parallel recipes.
 *
 * {@link allGatherRows} is Trove's cross-device negatives: every rank's
 * embedding rows, concatenated in rank order, where this rank's own rows
 * stay the differentiable tensors it computed and the other ranks' rows are
 * constants. Backward therefore reaches only the rows this rank owns, and
 * summing the ranks' gradients (`gradientReduction: "sum"`) gives exactly
 * the gradient of the global batch's loss, as one process holding the whole
 * batch would compute it.
 *
 * {@link shardedEncoder} splits an encoding job (evaluation) over the ranks
 * and gathers the results, so every rank ends with all embeddings.
 *
 * @example
 * ```ts ignore
 * const [queries, passages] = (await allGatherRows(comm, [q, p])).tensors;
 * ```
 *
 * @module
 */

import { concat, noGrad, reshape, Tensor, tidy } from "@irforge/tensor";
import type { Collective } from "./collective.ts";

/** What {@link allGatherRows} returns. */
export interface GatheredRows {
  /** Per input: `[Σ rows over ranks, width]`, rank order; this rank's rows keep their gradient. */
  tensors: Tensor[];
  /** Each rank's `extra`, in rank order. */
  extras: Float32Array[];
  /** Per input: the first row of each rank (and the total at the end). */
  rowOffsets: number[][];
}

/**
 * All-gathers 2-D tensors (same widths on every rank, any row counts) plus a
 * host array per rank, in one collective.
 */
export async function allGatherRows(
  comm: Collective,
  locals: readonly Tensor[],
  extra: Float32Array = new Float32Array(0),
): Promise<GatheredRows> {
  const widths = locals.map((t) => {
    if (t.rank !== 2) throw new Error(`allGatherRows: ${t} must be 2-D [rows, width]`);
    return t.shape[1]!;
  });
  const header = Float32Array.of(...locals.map((t) => t.shape[0]!), extra.length);
  const bodyLength = locals.reduce((a, t) => a + t.size, 0);
  const packed = new Float32Array(header.length + bodyLength + extra.length);
  packed.set(header, 0);
  const nonEmpty = locals.filter((t) => t.size > 0);
  if (nonEmpty.length > 0) {
    const joined = noGrad(() => tidy(() => concat(nonEmpty.map((t) => reshape(t, [t.size])), 0)));
    packed.set(await joined.toArray() as Float32Array, header.length);
    joined.dispose();
  }
  packed.set(extra, header.length + bodyLength);

  const { data, offsets } = await comm.allgather(packed);
  const perRank: { rows: number[]; parts: Float32Array[]; extra: Float32Array }[] = [];
  for (let r = 0; r < comm.size; r++) {
    const segment = data.subarray(offsets[r]!, offsets[r + 1]!);
    const rows = locals.map((_, i) => segment[i]!);
    let at = locals.length + 1;
    const parts = rows.map((n, i) => {
      const part = segment.subarray(at, at + n * widths[i]!);
      at += n * widths[i]!;
      return part;
    });
    perRank.push({ rows, parts, extra: segment.slice(at, at + segment[locals.length]!) });
  }
  const tensors = locals.map((local, i) => {
    const pieces = perRank.flatMap(({ rows, parts }, r) => {
      if (r === comm.rank) return local.shape[0]! > 0 ? [local] : [];
      return rows[i]! > 0 ? [Tensor.fromArray(parts[i]!, [rows[i]!, widths[i]!])] : [];
    });
    return pieces.length === 1 ? pieces[0]! : concat(pieces, 0);
  });
  const rowOffsets = locals.map((_, i) => {
    const starts = [0];
    for (const { rows } of perRank) starts.push(starts[starts.length - 1]! + rows[i]!);
    return starts;
  });
  return { tensors, extras: perRank.map((p) => p.extra), rowOffsets };
}

/**
 * Wraps `encode` (texts → row-major embeddings) so that each rank encodes a
 * contiguous share of the texts and every rank returns all embeddings, in
 * order. With one rank it is `encode` itself.
 */
export function shardedEncoder(
  comm: Collective,
  encode: (texts: readonly string[]) => Promise<Float32Array>,
): (texts: readonly string[]) => Promise<Float32Array> {
  if (comm.size === 1) return encode;
  return async (texts) => {
    const n = texts.length;
    const start = Math.floor((comm.rank * n) / comm.size);
    const end = Math.floor(((comm.rank + 1) * n) / comm.size);
    const mine = end > start ? await encode(texts.slice(start, end)) : new Float32Array(0);
    const { data } = await comm.allgather(mine);
    if (n > 0 && data.length % n !== 0) {
      throw new Error(`shardedEncoder: ${data.length} values do not divide into ${n} embeddings`);
    }
    return data;
  };
}
