/**
 * Reranks a first-stage run with a trained reranker, scoring each query's
 * top `depth` candidates exactly as the model's recipe evaluates:
 *
 * - `crossencoder`: `[BOS] query [EOS] passage [EOS]` → last-token hidden
 *   state · `score.weight`, in batches of `batchSize` pairs per query (the
 *   recipe's `per_device_eval_batch_size` by default); the score is the
 *   head's output.
 * - `blockrank`: the first `data.num_documents` candidates in one prompt,
 *   scored by attention at the auxiliary layer (`1000 + score`), or by
 *   greedy decoding (predicted document first) when the run's
 *   `training.blockrank_eval` is `decode`; candidates beyond the prompt keep
 *   their first-stage order below (scores `−1, −2, …`).
 * - `listwise`: rank_llm's sliding window (`window_size`, `stride`, from the
 *   end of the list to the front) over generation or first-token
 *   identifier logits, per `training.objective`; scores `n − rank`.
 *
 * The candidates are the run's documents in trec_eval's order (score
 * descending, ties by docid descending), cut to `depth`; the output holds
 * only them (as rank_llm writes a reranked run).
 *
 * @module
 */

import { noGrad } from "@irforge/tensor";
import {
  type CandidateList as DataCandidateList,
  collate,
  type Corpus,
  type Document,
  passageText,
  type Queries,
  type Run,
} from "@irforge/data";
import { rankTrecEval, type ScoredDocument } from "@irforge/eval";
import { blockrankTask } from "../recipes/blockrank.ts";
import { listwiseTask, shortenLists } from "../recipes/listwise.ts";
import { pairIds, scorePairs } from "../recipes/crossencoder.ts";
import { InputError } from "@irforge/data/input-error";
import {
  loadTrainedModel,
  type ModelSource,
  type ModelSourceOptions,
  resolveModelSource,
  type TrainedModel,
} from "./trained_model.ts";

/** Recipes whose models rerank. */
export const RERANK_RECIPES = ["crossencoder", "blockrank", "listwise"] as const;

/** One query's candidates, first-stage order. */
export interface RerankList {
  /** Query id. */
  qid: string;
  /** Query text. */
  query: string;
  /** Candidates in first-stage order. */
  documents: Document[];
}

/** Options of {@link rerankRun}. */
export interface RerankOptions {
  /** Candidates reranked per query (default 100). */
  depth?: number;
  /** Pairs per forward pass (cross-encoder; default the run's `per_device_eval_batch_size`). */
  batchSize?: number;
  /** Rerank only these queries (e.g. the judged ones); default every query of the run. */
  onlyQueries?: Iterable<string>;
  /** Called after each query. */
  progress?: (done: number, total: number) => void;
  /** Where the run file came from, for error messages (default "run"). */
  runName?: string;
}

/**
 * The top-`depth` candidate lists of `run`, with texts from `corpus` and
 * `queries`; a query or document missing from them is an
 * {@link InputError} naming the run file.
 */
export function candidateLists(
  run: Run,
  corpus: Corpus,
  queries: Queries,
  options: RerankOptions = {},
): RerankList[] {
  const depth = options.depth ?? 100;
  const file = options.runName ?? "run";
  const only = options.onlyQueries ? new Set(options.onlyQueries) : null;
  const lists: RerankList[] = [];
  for (const [qid, entries] of run.queries) {
    if (only && !only.has(qid)) continue;
    const query = queries.get(qid);
    if (query === undefined) {
      throw new InputError(
        { file, field: "qid" },
        `query "${qid}" is not in the queries file`,
      );
    }
    const documents = rankTrecEval(entries).slice(0, depth).map((e) => {
      const doc = corpus.get(e.docid);
      if (!doc) {
        throw new InputError(
          { file, field: "docid" },
          `document "${e.docid}" of query "${qid}" is not in the corpus`,
        );
      }
      return doc;
    });
    lists.push({ qid, query, documents });
  }
  return lists;
}

/** Cross-encoder scores of `lists`, `batchSize` pairs per forward. */
async function crossencoderScores(
  model: TrainedModel,
  lists: readonly RerankList[],
  batchSize: number,
  progress?: (done: number, total: number) => void,
): Promise<number[][]> {
  const { model: lm, tokenizer } = model.loaded;
  const d = model.config.data;
  const out: number[][] = [];
  for (const [q, list] of lists.entries()) {
    const scores: number[] = [];
    for (let start = 0; start < list.documents.length; start += batchSize) {
      const batch = collate(
        list.documents.slice(start, start + batchSize).map((doc) => {
          const ids = pairIds(
            tokenizer,
            list.query,
            passageText(doc),
            d.query_max_len,
            d.passage_max_len,
          );
          return { inputIds: ids, labels: ids.map(() => -100) };
        }),
        { padId: tokenizer.padId, padToMultipleOf: d.pad_to_multiple_of ?? 8 },
      );
      const values = noGrad(() => scorePairs(lm, model.head!, batch));
      scores.push(...await values.toArray().finally(() => values.dispose()));
    }
    out.push(scores);
    progress?.(q + 1, lists.length);
  }
  return out;
}

const quiet = () => {};

/** A loaded reranker. */
export interface Reranker {
  /** What was loaded from where. */
  source: ModelSource;
  /**
   * The model's scores for every candidate of `lists`, one array per list
   * in candidate order (see the module description for each recipe).
   */
  score(lists: readonly RerankList[], options?: RerankOptions): Promise<number[][]>;
  /** Frees the model. */
  dispose(): void;
}

/**
 * Loads the reranker `path` names (run directory, checkpoint or merged
 * model). BlockRank and listwise models are built as their recipe's own
 * task from the run's configuration (without training data) with the
 * checkpoint loaded into it, so ranking runs the recipe's evaluation code.
 */
export async function loadReranker(
  path: string,
  options: ModelSourceOptions & { log?: (line: string) => void } = {},
): Promise<Reranker> {
  const source = await resolveModelSource(path, options);
  const config = source.config;
  const recipe = config.recipe;
  if (recipe === "crossencoder") {
    const model = await loadTrainedModel(path, options);
    return {
      source,
      score: (lists, o = {}) =>
        crossencoderScores(
          model,
          lists,
          o.batchSize ?? config.training.per_device_eval_batch_size,
          o.progress,
        ),
      dispose: () => model.dispose(),
    };
  }
  if (recipe === "blockrank") {
    const task = await blockrankTask(config, {
      data: { train: [], eval: [], evalQrels: null, notes: [] },
      log: quiet,
    });
    try {
      if (source.checkpoint) await task.loadWeights(source.checkpoint);
    } catch (error) {
      task.dispose();
      throw error;
    }
    options.log?.(`model: ${source.description}`);
    const n = config.data.num_documents;
    const decode = config.training.blockrank_eval === "decode";
    return {
      source,
      async score(lists, o = {}) {
        const out: number[][] = [];
        for (const [q, list] of lists.entries()) {
          const example = {
            queryId: list.qid,
            query: list.query,
            documents: list.documents,
            answerIds: [],
          };
          const inPrompt = Math.min(n, list.documents.length);
          const rest = list.documents.slice(inPrompt).map((_, i) => -(i + 1));
          if (decode) {
            const [predicted] = await task.decodeExamples([example]);
            // As the recipe's decodedRun: the predicted document first, then first-stage order.
            out.push(list.documents.map((_, i) => i === predicted ? 1 : -(i + 1)));
          } else {
            const [scores] = await task.scoreExamples([example]);
            // As the recipe's evaluation: prompt documents above, the rest in first-stage order.
            out.push([...scores!.map((s) => 1000 + s), ...rest]);
          }
          o.progress?.(q + 1, lists.length);
        }
        return out;
      },
      dispose: () => task.dispose(),
    };
  }
  if (recipe === "listwise") {
    const d = config.data;
    // The recipe sizes its generation budget from its training windows; one full window of
    // placeholder passages gives the budget of every full window (grades are not used).
    const probe: DataCandidateList = {
      qid: "probe",
      query: "probe",
      hits: Array.from({ length: d.window_size }, (_, i) => ({
        docid: `d${i}`,
        content: "passage",
        rank: i + 1,
        score: d.window_size - i,
      })),
    };
    const task = await listwiseTask(config, {
      data: { train: [probe], eval: [], qrels: new Map(), evalQrels: new Map() },
      log: quiet,
    });
    try {
      if (source.checkpoint) await task.loadWeights(source.checkpoint);
    } catch (error) {
      task.dispose();
      throw error;
    }
    options.log?.(`model: ${source.description}`);
    return {
      source,
      async score(lists, o = {}) {
        const shortened = shortenLists(
          lists.map((list) => ({
            qid: list.qid,
            query: list.query,
            hits: list.documents.map((doc, i) => ({
              docid: doc.id,
              content: passageText(doc),
              rank: i + 1,
              score: list.documents.length - i,
            })),
          })),
          task.tokenizer,
          d.query_max_len,
          d.passage_max_len,
        );
        const out: number[][] = [];
        for (const [q, list] of shortened.entries()) {
          out.push(await task.rerank(list));
          o.progress?.(q + 1, lists.length);
        }
        return out;
      },
      dispose: () => task.dispose(),
    };
  }
  throw new InputError(
    { file: path },
    `a ${recipe} model does not rerank (rerank takes ${RERANK_RECIPES.join(", ")} models)`,
  );
}

/**
 * Reranks the top `depth` candidates of each query of `run`; returns the
 * scored documents per query (format them with `formatScoredRun`).
 */
export async function rerankRun(
  reranker: Reranker,
  input: { run: Run; corpus: Corpus; queries: Queries },
  options: RerankOptions = {},
): Promise<Map<string, ScoredDocument[]>> {
  const lists = candidateLists(input.run, input.corpus, input.queries, options);
  const scores = await reranker.score(lists, options);
  const out = new Map<string, ScoredDocument[]>();
  lists.forEach((list, q) => {
    const row = scores[q]!;
    row.forEach((score, i) => {
      if (!Number.isFinite(score)) {
        throw new Error(
          `${reranker.source.description} scored document "${list.documents[i]!.id}" of query ` +
            `"${list.qid}" ${score}`,
        );
      }
    });
    out.set(list.qid, list.documents.map((doc, i) => ({ docid: doc.id, score: row[i]! })));
  });
  return out;
}
