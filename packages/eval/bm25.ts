/**
 * Okapi BM25 over an in-memory inverted index held in typed arrays.
 *
 *   score(q, d) = Σ_{t ∈ q} qtf(t) · idf(t) · tf(t,d)·(k1 + 1)
 *                 / (tf(t,d) + k1·(1 − b + b·|d| / avgdl))
 *   idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))        (Lucene)
 *
 * Defaults k1 = 0.9, b = 0.4 (Anserini). Document lengths are exact term
 * counts (Lucene stores them lossily, so scores differ slightly from
 * Anserini's; the formula is the same). A repeated query term counts once
 * per occurrence, as in Anserini's bag-of-words queries.
 *
 * @module
 */

import { Analyzer } from "./analyzer.ts";
import { topK } from "./top_k.ts";

/** A document to index. */
export interface Bm25Document {
  /** Document id. */
  id: string;
  /** Text to index (callers join title and body). */
  text: string;
}

/** BM25 parameters. */
export interface Bm25Options {
  /** Term-frequency saturation (default 0.9). */
  k1?: number;
  /** Length normalisation (default 0.4). */
  b?: number;
  /** The analyser (default: Lucene stop words + Porter stemming). */
  analyzer?: Analyzer;
}

/** One search hit (a {@link ScoredDocument}, so runs evaluate directly). */
export interface Bm25Hit {
  /** Document id. */
  docid: string;
  /** BM25 score. */
  score: number;
}

/** Progress callback for long work: `done` of `total` items processed. */
export type Progress = (done: number, total: number) => void;

class GrowableInt32 {
  data = new Int32Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
}

/** A BM25 index; build with {@link Bm25Index.build}. */
export class Bm25Index {
  /** k1 in use. */
  readonly k1: number;
  /** b in use. */
  readonly b: number;
  /** The analyser used for documents and queries. */
  readonly analyzer: Analyzer;
  /** Document ids by internal index. */
  readonly ids: string[];
  /** Term → term number. */
  readonly #terms: Map<string, number>;
  /** Postings of term t are `[offsets[t], offsets[t+1])`. */
  readonly #offsets: Int32Array;
  readonly #postingDocs: Int32Array;
  readonly #postingTfs: Int32Array;
  readonly #docLengths: Int32Array;
  /** Average document length in terms. */
  readonly averageLength: number;
  #accumulator: Float64Array;

  private constructor(
    options: Required<Bm25Options>,
    ids: string[],
    terms: Map<string, number>,
    offsets: Int32Array,
    postingDocs: Int32Array,
    postingTfs: Int32Array,
    docLengths: Int32Array,
  ) {
    this.k1 = options.k1;
    this.b = options.b;
    this.analyzer = options.analyzer;
    this.ids = ids;
    this.#terms = terms;
    this.#offsets = offsets;
    this.#postingDocs = postingDocs;
    this.#postingTfs = postingTfs;
    this.#docLengths = docLengths;
    let total = 0;
    for (const length of docLengths) total += length;
    this.averageLength = ids.length ? total / ids.length : 0;
    this.#accumulator = new Float64Array(ids.length);
  }

  /** Indexes `documents` (ids must be unique). */
  static build(
    documents: Iterable<Bm25Document>,
    options: Bm25Options = {},
    progress?: Progress,
  ): Bm25Index {
    const k1 = options.k1 ?? 0.9;
    const b = options.b ?? 0.4;
    if (!(k1 >= 0)) throw new RangeError(`BM25 k1 must be ≥ 0, got ${k1}`);
    if (!(b >= 0 && b <= 1)) throw new RangeError(`BM25 b must be in [0, 1], got ${b}`);
    const analyzer = options.analyzer ?? new Analyzer();
    const docs = Array.isArray(documents) ? documents as Bm25Document[] : [...documents];
    const ids: string[] = [];
    const seen = new Set<string>();
    const terms = new Map<string, number>();
    const tripleTerm = new GrowableInt32();
    const tripleDoc = new GrowableInt32();
    const tripleTf = new GrowableInt32();
    const docLengths = new Int32Array(docs.length);
    const counts = new Map<number, number>();
    for (let d = 0; d < docs.length; d++) {
      const doc = docs[d]!;
      if (seen.has(doc.id)) throw new Error(`BM25: document id "${doc.id}" appears twice`);
      seen.add(doc.id);
      ids.push(doc.id);
      const tokens = analyzer.analyze(doc.text);
      docLengths[d] = tokens.length;
      counts.clear();
      for (const token of tokens) {
        let t = terms.get(token);
        if (t === undefined) terms.set(token, t = terms.size);
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      for (const [t, tf] of counts) {
        tripleTerm.push(t);
        tripleDoc.push(d);
        tripleTf.push(tf);
      }
      if (progress && (d + 1) % 1000 === 0) progress(d + 1, docs.length);
    }
    progress?.(docs.length, docs.length);
    // Counting sort of (term, doc, tf) by term; docs stay ascending.
    const offsets = new Int32Array(terms.size + 1);
    for (let i = 0; i < tripleTerm.length; i++) offsets[tripleTerm.data[i]! + 1]!++;
    for (let t = 0; t < terms.size; t++) offsets[t + 1]! += offsets[t]!;
    const cursor = offsets.slice(0, terms.size);
    const postingDocs = new Int32Array(tripleTerm.length);
    const postingTfs = new Int32Array(tripleTerm.length);
    for (let i = 0; i < tripleTerm.length; i++) {
      const at = cursor[tripleTerm.data[i]!]!++;
      postingDocs[at] = tripleDoc.data[i]!;
      postingTfs[at] = tripleTf.data[i]!;
    }
    return new Bm25Index(
      { k1, b, analyzer },
      ids,
      terms,
      offsets,
      postingDocs,
      postingTfs,
      docLengths,
    );
  }

  /** Number of indexed documents. */
  get size(): number {
    return this.ids.length;
  }

  /** Number of distinct terms. */
  get vocabularySize(): number {
    return this.#terms.size;
  }

  /** Document frequency of an analysed term (0 when unknown). */
  documentFrequency(term: string): number {
    const t = this.#terms.get(term);
    return t === undefined ? 0 : this.#offsets[t + 1]! - this.#offsets[t]!;
  }

  /** Lucene's idf of an analysed term. */
  idf(term: string): number {
    const df = this.documentFrequency(term);
    return Math.log(1 + (this.size - df + 0.5) / (df + 0.5));
  }

  /**
   * The `k` best documents for `query` (raw text, analysed here), best
   * first; equal scores keep indexing order. Documents sharing no term with
   * the query are never returned.
   */
  search(query: string, k: number): Bm25Hit[] {
    const queryTf = new Map<number, number>();
    for (const token of this.analyzer.analyze(query)) {
      const t = this.#terms.get(token);
      if (t !== undefined) queryTf.set(t, (queryTf.get(t) ?? 0) + 1);
    }
    const acc = this.#accumulator;
    const touched: number[] = [];
    const { k1, b } = this;
    const norm = this.averageLength > 0 ? b / this.averageLength : 0;
    for (const [t, qtf] of queryTf) {
      const start = this.#offsets[t]!;
      const end = this.#offsets[t + 1]!;
      const df = end - start;
      const weight = qtf * Math.log(1 + (this.size - df + 0.5) / (df + 0.5)) * (k1 + 1);
      for (let p = start; p < end; p++) {
        const d = this.#postingDocs[p]!;
        const tf = this.#postingTfs[p]!;
        if (acc[d] === 0) touched.push(d);
        acc[d]! += weight * tf / (tf + k1 * (1 - b + norm * this.#docLengths[d]!));
      }
    }
    // Every contribution is > 0 (Lucene's idf is positive), so `acc[d] === 0`
    // above marks a first touch and `touched` has no repeats.
    const candidates = Int32Array.from(touched);
    const best = topK(acc, k, candidates);
    for (const d of candidates) acc[d] = 0;
    return best.map((h) => ({ docid: this.ids[h.index]!, score: h.score }));
  }

  /** Runs {@link search} for every query, reporting progress. */
  searchAll(
    queries: Iterable<{ id: string; text: string }>,
    k: number,
    progress?: Progress,
  ): Map<string, Bm25Hit[]> {
    const list = [...queries];
    const out = new Map<string, Bm25Hit[]>();
    list.forEach((q, i) => {
      out.set(q.id, this.search(q.text, k));
      if (progress && ((i + 1) % 100 === 0 || i + 1 === list.length)) progress(i + 1, list.length);
    });
    return out;
  }
}
