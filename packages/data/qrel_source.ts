/**
 * Qrel sources (Trove's `MaterializedQRelConfig` semantics): judgments plus
 * the corpus and queries they point into, filtered by score and
 * transformed, then merged.
 *
 * - `minScore` keeps scores `≥ minScore`, `maxScore` keeps scores
 *   `< maxScore` (both on the original score, before the transform);
 * - `scoreTransform`: `"floor"`, `"ceil"`, `"binary"` (score > 0 → 1,
 *   else 0), a number (every kept pair gets it), or a function;
 * - `filter(qid, docid, score)` runs last, on the transformed score.
 *
 * Merging several sources: in order; a later source adds queries and
 * (query, document) pairs, and where a pair exists already the later score
 * wins. Texts are looked up in the source that contributed the pair.
 *
 * Trove's names `min_score`, `max_score` and `score_transform` are accepted
 * as well ({@link qrelSourceOptions}).
 *
 * @module
 */

import { InputError } from "./input_error.ts";
import type { Corpus, Document, Queries } from "./beir.ts";
import type { Qrels } from "./trec.ts";
import { troveSpelling } from "./trove_names.ts";

/** How scores are transformed. */
export type ScoreTransform = "floor" | "ceil" | "binary" | number | ((score: number) => number);

/** One source of (query, document, score) records. */
export interface QrelSourceConfig {
  /** The judgments (or a run turned into scores). */
  qrels: Qrels;
  /** Documents the judgments refer to. */
  corpus: Corpus;
  /** Queries the judgments refer to. */
  queries: Queries;
  /** Keep scores `≥ minScore`. */
  minScore?: number;
  /** Keep scores `< maxScore`. */
  maxScore?: number;
  /** Applied to kept scores. */
  scoreTransform?: ScoreTransform;
  /** Final predicate on (qid, docid, transformed score). */
  filter?: (qid: string, docid: string, score: number) => boolean;
  /** Name used in error messages (e.g. the qrels path). */
  name?: string;
}

/** Trove's (`MaterializedQRelConfig`) spellings of {@link QrelSourceConfig} options. */
export interface QrelSourceTroveNames {
  /** Trove's name for `minScore`. */
  min_score?: number;
  /** Trove's name for `maxScore`. */
  max_score?: number;
  /** Trove's name for `scoreTransform`. */
  score_transform?: ScoreTransform;
}

/** A qrel source under irforge's names, Trove's, or a mix of both. */
export type QrelSourceInput = QrelSourceConfig & QrelSourceTroveNames;

/**
 * The source under irforge's names; Trove's name and irforge's both given
 * with different values is a `TypeError`.
 *
 * @example
 * ```ts
 * import { qrelSourceOptions } from "@irforge/data";
 * const source = qrelSourceOptions({
 *   qrels: new Map(),
 *   corpus: new Map(),
 *   queries: new Map(),
 *   min_score: 1,
 * });
 * // source.minScore === 1
 * ```
 */
export function qrelSourceOptions(input: QrelSourceInput): QrelSourceConfig {
  return troveSpelling(input, {
    min_score: "minScore",
    max_score: "maxScore",
    score_transform: "scoreTransform",
  }, `qrel source${input.name === undefined ? "" : ` "${input.name}"`}`);
}

/** A scored document of a group. */
export interface ScoredDocument {
  /** The document. */
  document: Document;
  /** Its (transformed) score. */
  score: number;
}

/** Merged groups: query id → documents with scores, in insertion order. */
export interface MaterializedQrels {
  /** Query id → query text. */
  queries: Map<string, string>;
  /** Query id → document id → scored document. */
  groups: Map<string, Map<string, ScoredDocument>>;
}

function transform(score: number, how: ScoreTransform | undefined): number {
  if (how === undefined) return score;
  if (typeof how === "number") return how;
  if (typeof how === "function") return how(score);
  if (how === "floor") return Math.floor(score);
  if (how === "ceil") return Math.ceil(score);
  return score > 0 ? 1 : 0;
}

/**
 * Materialises and merges sources. A judged query or document missing from
 * its source's queries/corpus is an {@link InputError} naming the source.
 */
export function materializeQrels(sources: readonly QrelSourceInput[]): MaterializedQrels {
  const merged: MaterializedQrels = { queries: new Map(), groups: new Map() };
  sources.map(qrelSourceOptions).forEach((source, s) => {
    const file = source.name ?? `qrel source ${s}`;
    for (const [qid, docs] of source.qrels) {
      for (const [docid, raw] of docs) {
        if (source.minScore !== undefined && raw < source.minScore) continue;
        if (source.maxScore !== undefined && raw >= source.maxScore) continue;
        const score = transform(raw, source.scoreTransform);
        if (source.filter && !source.filter(qid, docid, score)) continue;
        const query = source.queries.get(qid);
        if (query === undefined) {
          throw new InputError({ file, field: "qid" }, `unknown query id "${qid}"`);
        }
        const document = source.corpus.get(docid);
        if (!document) {
          throw new InputError(
            { file, field: "docid" },
            `unknown document id "${docid}" (query "${qid}")`,
          );
        }
        merged.queries.set(qid, query);
        let group = merged.groups.get(qid);
        if (!group) merged.groups.set(qid, group = new Map());
        group.set(docid, { document, score });
      }
    }
  });
  return merged;
}

/** A run's entries as a qrels-shaped map of run scores (to use a run as a source). */
export function runAsQrels(
  run: { queries: Map<string, Array<{ docid: string; score: number }>> },
): Qrels {
  const out: Qrels = new Map();
  for (const [qid, entries] of run.queries) {
    out.set(qid, new Map(entries.map((e) => [e.docid, e.score])));
  }
  return out;
}
