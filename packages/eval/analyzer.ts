/**
 * The BM25 text analyser: lowercase (`String.prototype.toLowerCase`), split
 * on every run of characters that are neither Unicode letters nor digits
 * (`/[^\p{L}\p{N}]+/u`), drop Lucene's 33 English stop words, Porter-stem
 * (npm `stemmer`, Martin Porter's 1980 algorithm).
 *
 * Differences from Lucene's `EnglishAnalyzer` (Anserini's default): no
 * StandardTokenizer rules (so "3.5" gives "3" and "5", "john's" gives
 * "john" and "s"), no possessive filter, Porter rather than Lucene's
 * Porter variant — both are the original Porter algorithm.
 *
 * @module
 */

import { stemmer } from "stemmer";
import { LUCENE_ENGLISH_STOP_WORDS } from "./stop_words.ts";

/** The split pattern: any run of non-letter, non-digit characters. */
export const TOKEN_SEPARATOR: RegExp = /[^\p{L}\p{N}]+/u;

/** Options of {@link Analyzer}. */
export interface AnalyzerOptions {
  /** Words removed after lowercasing (default Lucene's English set). */
  stopWords?: ReadonlySet<string>;
  /** Apply the Porter stemmer (default true). */
  stem?: boolean;
}

/** Turns text into index terms; stems are cached per distinct word. */
export class Analyzer {
  readonly #stopWords: ReadonlySet<string>;
  readonly #stem: boolean;
  readonly #stems = new Map<string, string>();

  /** Creates an analyser (Lucene stop words and Porter stemming by default). */
  constructor(options: AnalyzerOptions = {}) {
    this.#stopWords = options.stopWords ?? LUCENE_ENGLISH_STOP_WORDS;
    this.#stem = options.stem ?? true;
  }

  /** The terms of `text`, in order, repeats kept. */
  analyze(text: string): string[] {
    const terms: string[] = [];
    for (const word of text.toLowerCase().split(TOKEN_SEPARATOR)) {
      if (word === "" || this.#stopWords.has(word)) continue;
      if (!this.#stem) {
        terms.push(word);
        continue;
      }
      let stem = this.#stems.get(word);
      if (stem === undefined) {
        stem = stemmer(word);
        this.#stems.set(word, stem);
      }
      terms.push(stem);
    }
    return terms;
  }
}
