/**
 * Exact top-k selection with a binary min-heap: O(n log k), no full sort.
 * Equal scores keep the lower index first, so results are deterministic.
 *
 * @module
 */

/** An index with its score. */
export interface Scored {
  /** Position in the scored collection. */
  index: number;
  /** Its score. */
  score: number;
}

/** `true` when (sa, ia) ranks below (sb, ib): lower score, or later index. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

/**
 * The `k` best of `scores` (restricted to `candidates` when given), best
 * first: score descending, ties by index ascending. NaN scores are skipped.
 */
export function topK(
  scores: ArrayLike<number>,
  k: number,
  candidates?: ArrayLike<number>,
): Scored[] {
  const n = candidates ? candidates.length : scores.length;
  const size = Math.max(0, Math.min(k, n));
  const heapScore = new Float64Array(size);
  const heapIndex = new Int32Array(size);
  let count = 0;
  for (let c = 0; c < n; c++) {
    const index = candidates ? candidates[c]! : c;
    const score = scores[index]!;
    if (Number.isNaN(score)) continue;
    if (count < size) {
      // Sift up.
      let i = count++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(score, index, heapScore[parent]!, heapIndex[parent]!)) break;
        heapScore[i] = heapScore[parent]!;
        heapIndex[i] = heapIndex[parent]!;
        i = parent;
      }
      heapScore[i] = score;
      heapIndex[i] = index;
    } else if (size > 0 && worse(heapScore[0]!, heapIndex[0]!, score, index)) {
      // Replace the root (the worst kept) and sift down.
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= size) break;
        const right = left + 1;
        let child = left;
        if (
          right < size &&
          worse(heapScore[right]!, heapIndex[right]!, heapScore[left]!, heapIndex[left]!)
        ) child = right;
        if (!worse(heapScore[child]!, heapIndex[child]!, score, index)) break;
        heapScore[i] = heapScore[child]!;
        heapIndex[i] = heapIndex[child]!;
        i = child;
      }
      heapScore[i] = score;
      heapIndex[i] = index;
    }
  }
  const out: Scored[] = [];
  for (let i = 0; i < count; i++) out.push({ index: heapIndex[i]!, score: heapScore[i]! });
  out.sort((a, b) => b.score - a.score || a.index - b.index);
  return out;
}
