/**
 * TREC qrels (`qid iter docid rel`) and run files (`qid Q0 docid rank score
 * tag`): readers that name file and line on bad input, and writers.
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";

/** Relevance judgments: query id → document id → grade. */
export type Qrels = Map<string, Map<string, number>>;

/** One retrieved document of a run. */
export interface RunEntry {
  /** Document id. */
  docid: string;
  /** Rank column as written (1-based). */
  rank: number;
  /** Score column. */
  score: number;
}

/** A run: query id → retrieved documents, in file order. */
export interface Run {
  /** Entries per query, in the order they appear in the file. */
  queries: Map<string, RunEntry[]>;
  /** The run tag of the first line ("" for a run built in memory). */
  tag: string;
}

/** Options of the readers. */
export interface ReadOptions {
  /** Record bad lines in this log instead of throwing on the first one. */
  skip?: SkipLog;
  /** When given, a document id not in this set is an error (or a skipped line). */
  knownDocuments?: { has(id: string): boolean };
  /** When given, a query id not in this set is an error (or a skipped line). */
  knownQueries?: { has(id: string): boolean };
}

function splitFields(line: string): string[] {
  return line.trim().split(/\s+/);
}

/** Parses qrels text; `file` is used in error messages only. */
export function parseQrels(text: string, file: string, options: ReadOptions = {}): Qrels {
  const skip = options.skip ?? new SkipLog(false);
  const qrels: Qrels = new Map();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, "");
    if (raw.trim() === "") continue;
    const line = i + 1;
    const f = splitFields(raw);
    if (f.length !== 4) {
      skip.report(
        new InputError({ file, line }, `expected 4 fields "qid iter docid rel", found ${f.length}`),
      );
      continue;
    }
    const [qid, , docid, relText] = f as [string, string, string, string];
    const rel = Number(relText);
    if (!Number.isInteger(rel)) {
      skip.report(
        new InputError({ file, line, field: "rel" }, `"${relText}" is not an integer grade`),
      );
      continue;
    }
    if (options.knownQueries && !options.knownQueries.has(qid)) {
      skip.report(new InputError({ file, line, field: "qid" }, `unknown query id "${qid}"`));
      continue;
    }
    if (options.knownDocuments && !options.knownDocuments.has(docid)) {
      skip.report(new InputError({ file, line, field: "docid" }, `unknown document id "${docid}"`));
      continue;
    }
    let docs = qrels.get(qid);
    if (!docs) qrels.set(qid, docs = new Map());
    if (docs.has(docid)) {
      skip.report(
        new InputError(
          { file, line, field: "docid" },
          `document "${docid}" is judged twice for query "${qid}"`,
        ),
      );
      continue;
    }
    docs.set(docid, rel);
  }
  return qrels;
}

/** Parses a TREC run; `file` is used in error messages only. */
export function parseRun(text: string, file: string, options: ReadOptions = {}): Run {
  const skip = options.skip ?? new SkipLog(false);
  const queries = new Map<string, RunEntry[]>();
  const seen = new Map<string, Set<string>>();
  let tag: string | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, "");
    if (raw.trim() === "") continue;
    const line = i + 1;
    const f = splitFields(raw);
    if (f.length !== 6) {
      skip.report(
        new InputError(
          { file, line },
          `expected 6 fields "qid Q0 docid rank score tag", found ${f.length}`,
        ),
      );
      continue;
    }
    const [qid, , docid, rankText, scoreText, lineTag] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const rank = Number(rankText);
    const score = Number(scoreText);
    if (!Number.isFinite(rank)) {
      skip.report(new InputError({ file, line, field: "rank" }, `"${rankText}" is not a number`));
      continue;
    }
    if (!Number.isFinite(score)) {
      skip.report(new InputError({ file, line, field: "score" }, `"${scoreText}" is not a number`));
      continue;
    }
    let docsSeen = seen.get(qid);
    if (!docsSeen) seen.set(qid, docsSeen = new Set());
    if (docsSeen.has(docid)) {
      skip.report(
        new InputError(
          { file, line, field: "docid" },
          `document "${docid}" is retrieved twice for query "${qid}"`,
        ),
      );
      continue;
    }
    docsSeen.add(docid);
    tag ??= lineTag;
    let entries = queries.get(qid);
    if (!entries) queries.set(qid, entries = []);
    entries.push({ docid, rank, score });
  }
  return { queries, tag: tag ?? "" };
}

/** Reads a qrels file. */
export async function readQrels(path: string, options: ReadOptions = {}): Promise<Qrels> {
  return parseQrels(await Deno.readTextFile(path), path, options);
}

/** Reads a run file. */
export async function readRun(path: string, options: ReadOptions = {}): Promise<Run> {
  return parseRun(await Deno.readTextFile(path), path, options);
}

/** Formats qrels as text, queries and documents in insertion order. */
export function formatQrels(qrels: Qrels): string {
  const out: string[] = [];
  for (const [qid, docs] of qrels) {
    for (const [docid, rel] of docs) out.push(`${qid} 0 ${docid} ${rel}`);
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/**
 * Formats scored documents as a run: per query, documents sorted by score
 * descending and ranked from 1.
 */
export function formatRun(
  scores: Map<string, Array<{ docid: string; score: number }>>,
  tag: string,
): string {
  const out: string[] = [];
  for (const [qid, docs] of scores) {
    const sorted = [...docs].sort((a, b) => b.score - a.score);
    sorted.forEach((d, i) => out.push(`${qid} Q0 ${d.docid} ${i + 1} ${d.score} ${tag}`));
  }
  return out.length ? out.join("\n") + "\n" : "";
}
