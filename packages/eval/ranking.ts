/**
 * trec_eval's ranking rule: a run's documents are ordered by score
 * descending, equal scores by document id descending (byte order, as C's
 * `strcmp`); the rank column of the run file is ignored. This is
 * `comp_sim_docno` in trec_eval's `form_res_rels.c`.
 *
 * @module
 */

/** A retrieved document with its score (the rank column is never used). */
export interface ScoredDocument {
  /** Document id. */
  docid: string;
  /** Retrieval score; higher ranks first. */
  score: number;
}

// UTF-16 code-unit order differs from UTF-8 byte order (C's strcmp) only
// between surrogates and U+E000..U+FFFF; this remap restores byte order.
function byteOrderUnit(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** Compares two strings as C's `strcmp` compares their UTF-8 bytes. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca !== cb) return byteOrderUnit(ca) - byteOrderUnit(cb);
  }
  return a.length - b.length;
}

/** trec_eval's order: negative when `a` ranks before `b`. */
export function compareTrecEval(a: ScoredDocument, b: ScoredDocument): number {
  if (a.score > b.score) return -1;
  if (a.score < b.score) return 1;
  return compareBytes(b.docid, a.docid);
}

/**
 * Returns the documents in trec_eval's rank order (a new array; the input is
 * untouched). Input already ordered by score, the common case, only has its
 * runs of equal scores sorted by document id; anything else is fully sorted.
 */
export function rankTrecEval<T extends ScoredDocument>(documents: readonly T[]): T[] {
  const copy = documents.slice();
  for (let i = 1; i < copy.length; i++) {
    if (copy[i - 1]!.score < copy[i]!.score || Number.isNaN(copy[i]!.score)) {
      return copy.sort(compareTrecEval);
    }
  }
  // Scores are non-increasing: order each run of equal scores by docid.
  let start = 0;
  while (start < copy.length) {
    let end = start + 1;
    while (end < copy.length && copy[end]!.score === copy[start]!.score) end++;
    if (end - start > 1) {
      const tied = copy.slice(start, end).sort((a, b) => compareBytes(b.docid, a.docid));
      for (let i = start; i < end; i++) copy[i] = tied[i - start]!;
    }
    start = end;
  }
  return copy;
}
