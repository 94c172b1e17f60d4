/**
 * Evaluates a run against qrels exactly as trec_eval 10 does: queries in
 * the qrels only (a run query without judgments is ignored), averaged over
 * queries present in both, or with `complete` (`-c`) over every judged
 * query, a query missing from the run scoring 0 on every measure.
 *
 * @module
 */

import type { Qrels, Run } from "@irforge/data/trec";
import { judgeRanking } from "./judged_ranking.ts";
import {
  measureNames,
  type MeasureSelection,
  parseMeasureSpecs,
  type RequestedMeasure,
} from "./measure_spec.ts";
import { compareBytes, type ScoredDocument } from "./ranking.ts";

/** Options of {@link evaluateRun}, named after trec_eval's flags. */
export interface EvaluateOptions {
  /** `-m` arguments (default `official`), e.g. `["ndcg_cut.10", "map"]`. */
  measures?: readonly string[];
  /** `-l`: minimum grade counted as relevant for binary measures (default 1). */
  relevanceLevel?: number;
  /** `-c`: average over all judged queries, missing ones scoring 0. */
  complete?: boolean;
  /** `-M`: evaluate at most this many documents per query. */
  maxDocsPerTopic?: number;
}

/** Per-query and summary values of an evaluation. */
export interface Evaluation {
  /** Measure names in trec_eval's print order (`map`, `P_10`, …). */
  names: string[];
  /** Names printed as integers (`num_ret`, `num_rel`, `num_rel_ret`). */
  integerNames: Set<string>;
  /** Evaluated queries in trec_eval order (qid byte order) → name → value. */
  perQuery: Map<string, Map<string, number>>;
  /** Summary value per name: mean (or sum for counts) over the queries. */
  summary: Map<string, number>;
  /** Number of queries averaged over (`num_q`). */
  numQueries: number;
  /** Run tag (`runid`). */
  runTag: string;
  /** The parsed measure selection. */
  selection: MeasureSelection;
}

/** A run as read from a file, or scored documents per query. */
export type RunInput = Run | ReadonlyMap<string, readonly ScoredDocument[]>;

function runQueries(run: RunInput): ReadonlyMap<string, readonly ScoredDocument[]> {
  return "queries" in run && run.queries instanceof Map
    ? (run as Run).queries
    : run as ReadonlyMap<string, readonly ScoredDocument[]>;
}

/**
 * Evaluates `run` against `qrels` with trec_eval's semantics.
 *
 * @example nDCG@10 and MAP of a run, printed as `trec_eval -c -l 2` would
 * ```ts
 * import { evaluateRun, formatTrecEval } from "@irforge/eval";
 *
 * const qrels = new Map([["q1", new Map([["d1", 2], ["d2", 0], ["d3", 1]])]]);
 * const run = new Map([["q1", [
 *   { docid: "d3", score: 9.1 },
 *   { docid: "d1", score: 7.4 },
 *   { docid: "d9", score: 2.0 },
 * ]]]);
 * const evaluation = evaluateRun(qrels, run, {
 *   measures: ["ndcg_cut.10", "map"],
 *   relevanceLevel: 2,
 *   complete: true,
 * });
 * console.log(evaluation.summary.get("ndcg_cut_10")); // 0.8597… (grades 1, 2 ranked 1st, 2nd)
 * console.log(formatTrecEval(evaluation)); // map 0.5000: only d1 has grade ≥ 2, at rank 2
 * ```
 */
export function evaluateRun(
  qrels: Qrels,
  run: RunInput,
  options: EvaluateOptions = {},
): Evaluation {
  const selection = parseMeasureSpecs(options.measures ?? []);
  const queries = runQueries(run);
  const runTag = "tag" in run && typeof run.tag === "string" ? run.tag : "";
  const names: string[] = [];
  const integerNames = new Set<string>();
  for (const requested of selection.measures) {
    for (const name of measureNames(requested)) {
      names.push(name);
      if (requested.definition.integer) integerNames.add(name);
    }
  }
  const perQuery = new Map<string, Map<string, number>>();
  const qids = [...qrels.keys()].sort(compareBytes);
  for (const qid of qids) {
    const documents = queries.get(qid);
    if (documents === undefined && !options.complete) continue;
    const ranking = judgeRanking(documents ?? [], qrels.get(qid), {
      relevanceLevel: options.relevanceLevel,
      maxDocsPerTopic: options.maxDocsPerTopic,
    });
    perQuery.set(qid, computeAll(selection.measures, ranking));
  }
  const numQueries = options.complete ? qrels.size : perQuery.size;
  const summary = new Map<string, number>();
  for (const requested of selection.measures) {
    for (const name of measureNames(requested)) {
      // Summed in qid order like trec_eval, so rounding matches it.
      let sum = 0;
      for (const values of perQuery.values()) sum += values.get(name)!;
      const mean = requested.definition.aggregation === "sum" || numQueries === 0
        ? sum
        : sum / numQueries;
      summary.set(name, mean);
    }
  }
  return { names, integerNames, perQuery, summary, numQueries, runTag, selection };
}

function computeAll(
  measures: readonly RequestedMeasure[],
  ranking: ReturnType<typeof judgeRanking>,
): Map<string, number> {
  const values = new Map<string, number>();
  for (const requested of measures) {
    const computed = requested.definition.compute(ranking, requested.cutoffs);
    measureNames(requested).forEach((name, i) => values.set(name, computed[i]!));
  }
  return values;
}

/**
 * Formats `value` with `digits` decimals exactly as C's `printf("%.Nf")`
 * (glibc rounds the exact binary value, ties to even; `toFixed` rounds ties
 * up).
 */
export function formatFixed(value: number, digits: number): string {
  const scaled = value * 2 ** (digits + 1);
  // An exact tie needs value·10^d to end in .5, i.e. value·2^(d+1) odd.
  if (Number.isInteger(scaled) && Math.abs(scaled % 2) === 1) {
    const times = value * 10 ** digits; // exact: a small half-integer
    let n = Math.floor(times);
    if (n % 2 !== 0) n += 1;
    const sign = n < 0 ? "-" : "";
    const text = Math.abs(n).toString().padStart(digits + 1, "0");
    return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }
  return value.toFixed(digits);
}

function line(name: string, qid: string, value: string): string {
  return `${name.padEnd(22)}\t${qid}\t${value}`;
}

/** Options of {@link formatTrecEval}. */
export interface FormatOptions {
  /** `-q`: print every query's values before the summary. */
  perQuery?: boolean;
  /** `-n`: omit the summary. */
  noSummary?: boolean;
}

/** Formats an evaluation as trec_eval prints it (`%-22s\t%s\t%6.4f`). */
export function formatTrecEval(evaluation: Evaluation, options: FormatOptions = {}): string {
  const out: string[] = [];
  const value = (name: string, v: number) =>
    evaluation.integerNames.has(name) ? String(Math.trunc(v)) : formatFixed(v, 4);
  if (options.perQuery) {
    for (const [qid, values] of evaluation.perQuery) {
      for (const name of evaluation.names) {
        out.push(line(name, qid, value(name, values.get(name)!)));
      }
    }
  }
  if (!options.noSummary) {
    if (evaluation.selection.runid) out.push(line("runid", "all", evaluation.runTag));
    if (evaluation.selection.numQ) out.push(line("num_q", "all", String(evaluation.numQueries)));
    for (const name of evaluation.names) {
      out.push(line(name, "all", value(name, evaluation.summary.get(name)!)));
    }
  }
  return out.length ? out.join("\n") + "\n" : "";
}
