/**
 * BEIR layout: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
 * (`_id`, `text`) and `qrels/<split>.tsv` (header `query-id corpus-id
 * score`, tab separated, CRLF tolerated). Readers name file, line and field
 * on bad input; the writer produces exactly this layout.
 *
 * @module
 */

import { join } from "node:path";
import { InputError, SkipLog } from "./input_error.ts";
import { asObject, stringField } from "./fields.ts";
import { readJsonl, writeJsonl } from "./jsonl.ts";
import { readLines } from "./lines.ts";
import type { Qrels } from "./trec.ts";

/** One document of a corpus. */
export interface Document {
  /** Document id (`_id` in BEIR). */
  id: string;
  /** Title, `""` when the collection has none. */
  title: string;
  /** Body text. */
  text: string;
}

/** A corpus: document id → document, in file order. */
export type Corpus = Map<string, Document>;

/** Queries: query id → query text, in file order. */
export type Queries = Map<string, string>;

/** A BEIR collection in memory. */
export interface BeirCollection {
  /** The documents. */
  corpus: Corpus;
  /** The queries. */
  queries: Queries;
  /** Judgments of one split. */
  qrels: Qrels;
}

/** Options of the BEIR readers. */
export interface BeirReadOptions {
  /** Count bad records here instead of throwing on the first one. */
  skip?: SkipLog;
  /** Called every 10,000 records with the count so far (long files). */
  onProgress?: (records: number) => void;
}

/**
 * Reads `corpus.jsonl`. A missing `_id` or `text` field, or a duplicated id,
 * is an error; `title` is optional; empty texts are kept (BEIR corpora and
 * Cranfield have a few).
 */
export async function readBeirCorpus(path: string, options: BeirReadOptions = {}): Promise<Corpus> {
  const skip = options.skip ?? new SkipLog(false);
  const corpus: Corpus = new Map();
  for await (const { value, line } of readJsonl(path, { skip })) {
    const where = { file: path, line };
    try {
      const record = asObject(value, where);
      const id = stringField(record, "_id", where, { nonEmpty: true, numberAllowed: true });
      const title = stringField(record, "title", where, { fallback: "" });
      const text = stringField(record, "text", where);
      if (corpus.has(id)) {
        throw new InputError({ ...where, field: "_id" }, `duplicated document id "${id}"`);
      }
      corpus.set(id, { id, title, text });
      if (options.onProgress && corpus.size % 10_000 === 0) options.onProgress(corpus.size);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  }
  return corpus;
}

/** Reads `queries.jsonl`. A missing id, a duplicated id or an empty text is an error. */
export async function readBeirQueries(
  path: string,
  options: BeirReadOptions = {},
): Promise<Queries> {
  const skip = options.skip ?? new SkipLog(false);
  const queries: Queries = new Map();
  for await (const { value, line } of readJsonl(path, { skip })) {
    const where = { file: path, line };
    try {
      const record = asObject(value, where);
      const id = stringField(record, "_id", where, { nonEmpty: true, numberAllowed: true });
      const text = stringField(record, "text", where, { nonEmpty: true });
      if (queries.has(id)) {
        throw new InputError({ ...where, field: "_id" }, `duplicated query id "${id}"`);
      }
      queries.set(id, text);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  }
  return queries;
}

/** Options of {@link readBeirQrels}. */
export interface BeirQrelsOptions extends BeirReadOptions {
  /** When given, an unknown document id is an error. */
  corpus?: { has(id: string): boolean };
  /** When given, an unknown query id is an error. */
  queries?: { has(id: string): boolean };
}

/**
 * Reads a BEIR qrels TSV: an optional header `query-id corpus-id score`, then
 * `qid<TAB>docid<TAB>score` lines (integer scores; CRLF tolerated).
 */
export async function readBeirQrels(path: string, options: BeirQrelsOptions = {}): Promise<Qrels> {
  const skip = options.skip ?? new SkipLog(false);
  const qrels: Qrels = new Map();
  for await (const { text, line } of readLines(path)) {
    if (text.trim() === "") continue;
    const fields = text.split("\t").map((f) => f.trim());
    if (line === 1 && fields[0] === "query-id") continue;
    if (fields.length !== 3) {
      skip.report(
        new InputError(
          { file: path, line },
          `expected 3 tab-separated fields "query-id corpus-id score", found ${fields.length}`,
        ),
      );
      continue;
    }
    const [qid, docid, scoreText] = fields as [string, string, string];
    const score = Number(scoreText);
    if (scoreText === "" || !Number.isInteger(score)) {
      skip.report(
        new InputError({ file: path, line, field: "score" }, `"${scoreText}" is not an integer`),
      );
      continue;
    }
    if (qid === "") {
      skip.report(new InputError({ file: path, line, field: "query-id" }, "is empty"));
      continue;
    }
    if (options.queries && !options.queries.has(qid)) {
      skip.report(
        new InputError({ file: path, line, field: "query-id" }, `unknown query id "${qid}"`),
      );
      continue;
    }
    if (options.corpus && !options.corpus.has(docid)) {
      skip.report(
        new InputError({ file: path, line, field: "corpus-id" }, `unknown document id "${docid}"`),
      );
      continue;
    }
    let docs = qrels.get(qid);
    if (!docs) qrels.set(qid, docs = new Map());
    if (docs.has(docid)) {
      skip.report(
        new InputError(
          { file: path, line, field: "corpus-id" },
          `document "${docid}" is judged twice for query "${qid}"`,
        ),
      );
      continue;
    }
    docs.set(docid, score);
  }
  return qrels;
}

/**
 * Reads a BEIR folder: corpus, queries and `qrels/<split>.tsv`, checking that
 * every judged query and document exists.
 */
export async function readBeir(
  dir: string,
  split: string,
  options: BeirReadOptions = {},
): Promise<BeirCollection> {
  const corpus = await readBeirCorpus(join(dir, "corpus.jsonl"), options);
  const queries = await readBeirQueries(join(dir, "queries.jsonl"), options);
  const qrels = await readBeirQrels(join(dir, "qrels", `${split}.tsv`), {
    ...options,
    corpus,
    queries,
  });
  return { corpus, queries, qrels };
}

/** Counts written by {@link writeBeir}. */
export interface BeirCounts {
  /** Documents written. */
  documents: number;
  /** Queries written. */
  queries: number;
  /** Qrel lines written. */
  qrels: number;
  /** Queries with at least one judgment. */
  judgedQueries: number;
}

/** Writes a collection in BEIR layout under `dir` (qrels to `qrels/<split>.tsv`). */
export async function writeBeir(
  dir: string,
  collection: BeirCollection,
  split = "test",
): Promise<BeirCounts> {
  await Deno.mkdir(join(dir, "qrels"), { recursive: true });
  const documents = await writeJsonl(
    join(dir, "corpus.jsonl"),
    [...collection.corpus.values()].map((d) => ({ _id: d.id, title: d.title, text: d.text })),
  );
  const queries = await writeJsonl(
    join(dir, "queries.jsonl"),
    [...collection.queries].map(([id, text]) => ({ _id: id, text })),
  );
  const lines = ["query-id\tcorpus-id\tscore"];
  for (const [qid, docs] of collection.qrels) {
    for (const [docid, score] of docs) lines.push(`${qid}\t${docid}\t${score}`);
  }
  await Deno.writeTextFile(join(dir, "qrels", `${split}.tsv`), lines.join("\n") + "\n");
  return {
    documents,
    queries,
    qrels: lines.length - 1,
    judgedQueries: [...collection.qrels.values()].filter((d) => d.size > 0).length,
  };
}
