/**
 * Trove-style binary dataset for contrastive training: per query one
 * positive and `groupSize − 1` negatives.
 *
 * Negatives come from, in order of preference: qrels below the positive
 * threshold (a negative {@link MaterializedQrels}), a run (hard negatives
 * from ranks `[depthStart, depthEnd)` excluding positives), then random
 * corpus documents when the pools are too small and `randomNegatives` is
 * on; otherwise pooled negatives repeat (sampled with replacement). All
 * draws are seeded by (seed, epoch, index).
 *
 * Trove's name `group_size` is accepted for `groupSize`
 * ({@link binaryDatasetOptions}).
 *
 * @module
 */

import type { Corpus, Document } from "./beir.ts";
import type { MaterializedQrels } from "./qrel_source.ts";
import type { Run } from "./trec.ts";
import { troveSpelling } from "./trove_names.ts";
import { randomInt, sampleWithoutReplacement, seededRandom } from "./random.ts";

/** Hard negatives from a run. */
export interface RunNegatives {
  /** The run (e.g. BM25). */
  run: Run;
  /** Documents of the run, looked up by id. */
  corpus: Corpus;
  /** First rank position used, 0-based (default 0). */
  depthStart?: number;
  /** One past the last position used (default 100). */
  depthEnd?: number;
}

/** Options of {@link BinaryDataset}. */
export interface BinaryDatasetOptions {
  /** Positives (e.g. qrels with `minScore: 1`). */
  positives: MaterializedQrels;
  /** Judged negatives (e.g. qrels with `maxScore: 1`). */
  negatives?: MaterializedQrels;
  /** Hard negatives from a run. */
  runNegatives?: RunNegatives;
  /** Corpus for random negatives. */
  randomCorpus?: Corpus;
  /** Documents per group: 1 positive + `groupSize − 1` negatives. */
  groupSize: number;
  /** Base seed (default 42). */
  seed?: number;
}

/** {@link BinaryDatasetOptions} under irforge's names or with Trove's `group_size`. */
export type BinaryDatasetInput =
  | (BinaryDatasetOptions & { group_size?: number })
  | (Omit<BinaryDatasetOptions, "groupSize"> & { groupSize?: number; group_size: number });

/**
 * The options under irforge's names; `groupSize` and Trove's `group_size`
 * both given with different values is a `TypeError`.
 *
 * @example
 * ```ts
 * import { binaryDatasetOptions } from "@irforge/data";
 * const positives = { queries: new Map(), groups: new Map() };
 * binaryDatasetOptions({ positives, group_size: 8 }).groupSize; // 8
 * ```
 */
export function binaryDatasetOptions(input: BinaryDatasetInput): BinaryDatasetOptions {
  return troveSpelling(input, { group_size: "groupSize" }, "BinaryDataset");
}

/** One training group. */
export interface BinaryItem {
  /** Query id. */
  qid: string;
  /** Query text. */
  query: string;
  /** Positive first, then negatives. */
  passages: Document[];
  /** 1 for the positive, 0 for negatives. */
  labels: number[];
}

/** Binary dataset over queries that have at least one positive. */
export class BinaryDataset {
  /** Query ids with a positive, in positives order. */
  readonly qids: string[];
  /** The options, under irforge's names. */
  readonly options: BinaryDatasetOptions;
  readonly #randomIds: string[];

  /** Builds the dataset; a query whose negative pool is empty and no random corpus is an error at `get`. */
  constructor(input: BinaryDatasetInput) {
    const options = this.options = binaryDatasetOptions(input);
    if (options.groupSize < 1) throw new RangeError("groupSize must be ≥ 1");
    this.qids = [...options.positives.groups].filter(([, g]) => g.size > 0).map(([q]) => q);
    this.#randomIds = options.randomCorpus ? [...options.randomCorpus.keys()] : [];
  }

  /** Number of queries. */
  get length(): number {
    return this.qids.length;
  }

  /** Negative pool of a query: judged negatives then run negatives, positives excluded. */
  negativePool(qid: string): Document[] {
    const positives = this.options.positives.groups.get(qid) ?? new Map();
    const pool = new Map<string, Document>();
    for (const [docid, scored] of this.options.negatives?.groups.get(qid) ?? []) {
      if (!positives.has(docid)) pool.set(docid, scored.document);
    }
    const hard = this.options.runNegatives;
    if (hard) {
      const entries = hard.run.queries.get(qid) ?? [];
      for (const entry of entries.slice(hard.depthStart ?? 0, hard.depthEnd ?? 100)) {
        const document = hard.corpus.get(entry.docid);
        if (document && !positives.has(entry.docid)) pool.set(entry.docid, document);
      }
    }
    return [...pool.values()];
  }

  /** Group `index` of `epoch`. */
  get(index: number, epoch = 0): BinaryItem {
    const qid = this.qids[index];
    if (qid === undefined) {
      throw new RangeError(`index ${index} outside 0..${this.qids.length - 1}`);
    }
    const random = seededRandom(this.options.seed ?? 42, epoch, index);
    const positives = [...this.options.positives.groups.get(qid)!.values()];
    const positive = positives[randomInt(random, positives.length)]!.document;
    const wanted = this.options.groupSize - 1;
    const pool = this.negativePool(qid);
    const negatives = sampleWithoutReplacement(random, pool, wanted);
    const excluded = new Set([
      ...this.options.positives.groups.get(qid)!.keys(),
      ...negatives.map((d) => d.id),
    ]);
    while (negatives.length < wanted) {
      if (this.options.randomCorpus && this.#randomIds.length > excluded.size) {
        const id = this.#randomIds[randomInt(random, this.#randomIds.length)]!;
        if (excluded.has(id)) continue;
        excluded.add(id);
        negatives.push(this.options.randomCorpus.get(id)!);
      } else if (pool.length > 0) {
        negatives.push(pool[randomInt(random, pool.length)]!);
      } else {
        throw new RangeError(
          `query "${qid}" has no negatives: give judged negatives, a run or a random corpus`,
        );
      }
    }
    return {
      qid,
      query: this.options.positives.queries.get(qid)!,
      passages: [positive, ...negatives],
      labels: [1, ...negatives.map(() => 0)],
    };
  }
}
