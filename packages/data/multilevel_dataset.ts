/**
 * Trove-style multi-level dataset: graded labels per query, for listwise or
 * graded losses.
 *
 * Training form: from each query's judged documents pick `groupSize` by
 * `most_relevant` (highest score first, ties in insertion order) or
 * `random` (seeded by seed, epoch, index); groups smaller than `groupSize`
 * are padded by repeating their documents in order. Evaluation form
 * ({@link candidateGroups}): fixed candidate lists (e.g. BM25 top-100) with
 * labels from the qrels (0 when unjudged).
 *
 * Trove's names `group_size` and `passage_selection_strategy` are accepted
 * as well ({@link multiLevelOptions}).
 *
 * @module
 */

import type { Corpus, Document } from "./beir.ts";
import type { MaterializedQrels } from "./qrel_source.ts";
import type { Qrels, Run } from "./trec.ts";
import { sampleWithoutReplacement, seededRandom } from "./random.ts";
import { InputError } from "./input_error.ts";
import { troveSpelling } from "./trove_names.ts";

/** Options of {@link MultiLevelDataset}. */
export interface MultiLevelOptions {
  /** Judged documents with graded scores. */
  source: MaterializedQrels;
  /** Documents per group. */
  groupSize: number;
  /** How documents are chosen when a query has more than `groupSize`. */
  passageSelectionStrategy?: "most_relevant" | "random";
  /** Base seed (default 42). */
  seed?: number;
}

/** Trove's spellings of {@link MultiLevelOptions} options. */
export interface MultiLevelTroveNames {
  /** Trove's name for `groupSize`. */
  group_size?: number;
  /** Trove's name for `passageSelectionStrategy`. */
  passage_selection_strategy?: "most_relevant" | "random";
}

/** {@link MultiLevelOptions} under irforge's names, Trove's, or a mix of both. */
export type MultiLevelInput =
  | (MultiLevelOptions & MultiLevelTroveNames)
  | (
    & Omit<MultiLevelOptions, "groupSize">
    & MultiLevelTroveNames
    & { groupSize?: number; group_size: number }
  );

/**
 * The options under irforge's names; an irforge name and its Trove name
 * both given with different values is a `TypeError`.
 *
 * @example
 * ```ts
 * import { multiLevelOptions } from "@irforge/data";
 * const source = { queries: new Map(), groups: new Map() };
 * multiLevelOptions({ source, group_size: 4, passage_selection_strategy: "random" });
 * // { source, groupSize: 4, passageSelectionStrategy: "random" }
 * ```
 */
export function multiLevelOptions(input: MultiLevelInput): MultiLevelOptions {
  return troveSpelling(input, {
    group_size: "groupSize",
    passage_selection_strategy: "passageSelectionStrategy",
  }, "MultiLevelDataset");
}

/** A graded group. */
export interface GradedItem {
  /** Query id. */
  qid: string;
  /** Query text. */
  query: string;
  /** Documents. */
  passages: Document[];
  /** Their scores. */
  labels: number[];
}

/** Graded groups over every query with at least one judged document. */
export class MultiLevelDataset {
  /** Query ids in source order. */
  readonly qids: string[];
  /** The options, under irforge's names. */
  readonly options: MultiLevelOptions;

  /** Builds the dataset. */
  constructor(input: MultiLevelInput) {
    const options = this.options = multiLevelOptions(input);
    if (options.groupSize < 1) throw new RangeError("groupSize must be ≥ 1");
    this.qids = [...options.source.groups].filter(([, g]) => g.size > 0).map(([q]) => q);
  }

  /** Number of queries. */
  get length(): number {
    return this.qids.length;
  }

  /** Group `index` of `epoch`. */
  get(index: number, epoch = 0): GradedItem {
    const qid = this.qids[index];
    if (qid === undefined) {
      throw new RangeError(`index ${index} outside 0..${this.qids.length - 1}`);
    }
    const all = [...this.options.source.groups.get(qid)!.values()];
    const size = this.options.groupSize;
    let chosen;
    if ((this.options.passageSelectionStrategy ?? "most_relevant") === "most_relevant") {
      chosen = all.map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i)
        .slice(0, size).map((x) => x.d);
    } else {
      chosen = sampleWithoutReplacement(
        seededRandom(this.options.seed ?? 42, epoch, index),
        all,
        size,
      );
    }
    const base = chosen.length;
    for (let k = 0; chosen.length < size; k++) chosen.push(chosen[k % base]!);
    return {
      qid,
      query: this.options.source.queries.get(qid)!,
      passages: chosen.map((c) => c.document),
      labels: chosen.map((c) => c.score),
    };
  }
}

/**
 * Evaluation groups: each query's run entries `[0, depth)` in run order,
 * labelled from `qrels` (0 when unjudged). A run document missing from the
 * corpus is an {@link InputError} naming `runName`.
 */
export function candidateGroups(
  run: Run,
  qrels: Qrels,
  corpus: Corpus,
  queries: Map<string, string>,
  depth = 100,
  runName = "run",
): GradedItem[] {
  const out: GradedItem[] = [];
  for (const [qid, entries] of run.queries) {
    const query = queries.get(qid);
    if (query === undefined) {
      throw new InputError({ file: runName, field: "qid" }, `unknown query id "${qid}"`);
    }
    const kept = entries.slice(0, depth);
    const passages = kept.map((e) => {
      const doc = corpus.get(e.docid);
      if (!doc) {
        throw new InputError({ file: runName, field: "docid" }, `unknown document id "${e.docid}"`);
      }
      return doc;
    });
    out.push({ qid, query, passages, labels: kept.map((e) => qrels.get(qid)?.get(e.docid) ?? 0) });
  }
  return out;
}
