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
 * untouched). Already ordered input, the common case, is detected in one
 * pass and not re-sorted.
 */
export function rankTrecEval<T extends ScoredDocument>(documents: readonly T[]): T[] {
  let ordered = true;
  for (let i = 1; i < documents.length; i++) {
    if (compareTrecEval(documents[i - 1]!, documents[i]!) > 0) {
      ordered = false;
      break;
    }
  }
  const copy = documents.slice();
  if (!ordered) copy.sort(compareTrecEval);
  return copy;
}
