/**
 * BlockRank's JSONL input: one query per line, `{query, query_id?,
 * documents: [{doc_id, title?, text}] | [string], answer_ids}`. With plain
 * string documents the ids are their 0-based positions (`"0"`, `"1"`, …),
 * as in BlockRank's loader.
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";
import { asArray, asObject, describe, fieldLocation, stringField } from "./fields.ts";
import { readJsonl } from "./jsonl.ts";
import type { Document } from "./beir.ts";

/** One in-context ranking example. */
export interface RankingExample {
  /** Query id (`query_id`, else the line number). */
  queryId: string;
  /** Query text. */
  query: string;
  /** Candidate documents in file order. */
  documents: Document[];
  /** Ids of the relevant documents (all present in `documents`). */
  answerIds: string[];
}

/** Parses one BlockRank JSONL record; `line` and `file` locate errors. */
export function parseRankingExample(value: unknown, file: string, line: number): RankingExample {
  const where = { file, line };
  const object = asObject(value, where);
  const query = stringField(object, "query", where, { nonEmpty: true });
  const queryId = stringField(object, "query_id", where, {
    fallback: String(line),
    numberAllowed: true,
  });
  const rawDocuments = asArray(object["documents"], where, "documents");
  if (rawDocuments.length === 0) {
    throw new InputError(fieldLocation(where, "documents"), "no documents");
  }
  const documents: Document[] = [];
  const ids = new Set<string>();
  rawDocuments.forEach((raw, i) => {
    let document: Document;
    if (typeof raw === "string") {
      document = { id: String(i), title: "", text: raw };
    } else {
      const docWhere = { ...where, prefix: `documents[${i}]` };
      const doc = asObject(raw, docWhere);
      document = {
        id: stringField(doc, "doc_id", docWhere, { nonEmpty: true, numberAllowed: true }),
        title: stringField(doc, "title", docWhere, { fallback: "" }),
        text: stringField(doc, "text", docWhere),
      };
    }
    if (ids.has(document.id)) {
      throw new InputError(
        fieldLocation(where, `documents[${i}]`),
        `duplicated document id "${document.id}"`,
      );
    }
    ids.add(document.id);
    documents.push(document);
  });
  const answers = asArray(object["answer_ids"], where, "answer_ids").map((id, i) => {
    if (typeof id !== "string" && typeof id !== "number") {
      throw new InputError(
        fieldLocation(where, `answer_ids[${i}]`),
        `expected an id, found ${describe(id)}`,
      );
    }
    const text = String(id);
    if (!ids.has(text)) {
      throw new InputError(
        fieldLocation(where, `answer_ids[${i}]`),
        `unknown document id "${text}"`,
      );
    }
    return text;
  });
  return { queryId, query, documents, answerIds: answers };
}

/** Reads a BlockRank JSONL file; duplicated query ids are errors. */
export async function readRankingExamples(
  file: string,
  skip: SkipLog = new SkipLog(false),
): Promise<RankingExample[]> {
  const out: RankingExample[] = [];
  const seen = new Set<string>();
  for await (const { value, line } of readJsonl(file, { skip })) {
    try {
      const example = parseRankingExample(value, file, line);
      if (seen.has(example.queryId)) {
        throw new InputError(
          { file, line, field: "query_id" },
          `duplicated query id "${example.queryId}"`,
        );
      }
      seen.add(example.queryId);
      out.push(example);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  }
  return out;
}
