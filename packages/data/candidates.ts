/**
 * rank_llm candidate lists: `[{query, hits: [{content, qid, docid, rank,
 * score}]}]`, where `query` is either a string (the files shipped with
 * rank_llm for TREC DL and NovelEval) or `{text, qid}` (newer rank_llm
 * requests). The query id comes from `query.qid`, else from the hits.
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";
import { asArray, asObject, describe, fieldLocation, numberField, stringField } from "./fields.ts";
import { type LocatedRecord, readJsonRecords, recordWhere } from "./json_records.ts";

/** One retrieved candidate passage. */
export interface Candidate {
  /** Document id. */
  docid: string;
  /** Passage text. */
  content: string;
  /** 1-based rank in the first-stage run. */
  rank: number;
  /** First-stage score. */
  score: number;
}

/** A query and its first-stage candidates, in rank order. */
export interface CandidateList {
  /** Query id. */
  qid: string;
  /** Query text. */
  query: string;
  /** Candidates in file order (rank order in rank_llm's files). */
  hits: Candidate[];
}

/** Parses one candidate-list record; throws {@link InputError} naming the field. */
export function parseCandidateList(record: LocatedRecord): CandidateList {
  const where = recordWhere(record);
  const object = asObject(record.value, where);
  let query: string;
  let qid: string | undefined;
  const rawQuery = object["query"];
  if (typeof rawQuery === "string") {
    query = rawQuery;
  } else if (rawQuery && typeof rawQuery === "object" && !Array.isArray(rawQuery)) {
    const q = rawQuery as Record<string, unknown>;
    const queryWhere = recordWhere(record, "query");
    query = stringField(q, "text", queryWhere);
    if (q["qid"] !== undefined) qid = stringField(q, "qid", queryWhere, { numberAllowed: true });
  } else {
    throw new InputError(
      fieldLocation(where, "query"),
      `expected a string or {text, qid}, found ${describe(rawQuery)}`,
    );
  }
  if (query.trim() === "") throw new InputError(fieldLocation(where, "query"), "empty query");
  const hitsRaw = asArray(object["hits"], where, "hits");
  const hits: Candidate[] = [];
  const seen = new Set<string>();
  hitsRaw.forEach((value, i) => {
    const hitWhere = recordWhere(record, `hits[${i}]`);
    const hit = asObject(value, hitWhere);
    const docid = stringField(hit, "docid", hitWhere, { numberAllowed: true, nonEmpty: true });
    if (seen.has(docid)) {
      throw new InputError(fieldLocation(hitWhere, "docid"), `duplicated docid "${docid}"`);
    }
    seen.add(docid);
    const hitQid = hit["qid"] === undefined
      ? undefined
      : stringField(hit, "qid", hitWhere, { numberAllowed: true });
    if (qid === undefined) qid = hitQid;
    else if (hitQid !== undefined && hitQid !== qid) {
      throw new InputError(
        fieldLocation(hitWhere, "qid"),
        `qid "${hitQid}" differs from the list's qid "${qid}"`,
      );
    }
    hits.push({
      docid,
      content: stringField(hit, "content", hitWhere),
      rank: numberField(hit, "rank", hitWhere, i + 1),
      score: numberField(hit, "score", hitWhere, 0),
    });
  });
  if (qid === undefined) {
    throw new InputError(
      fieldLocation(where, "query"),
      "no query id (neither query.qid nor hits[].qid)",
    );
  }
  return { qid, query, hits };
}

/** Reads a rank_llm candidate file (JSON array or JSONL). */
export async function readCandidates(
  file: string,
  skip: SkipLog = new SkipLog(false),
): Promise<CandidateList[]> {
  const lists: CandidateList[] = [];
  const seen = new Set<string>();
  for (const record of await readJsonRecords(file, skip)) {
    try {
      const list = parseCandidateList(record);
      if (seen.has(list.qid)) {
        throw new InputError(
          fieldLocation(recordWhere(record), "query"),
          `duplicated query id "${list.qid}"`,
        );
      }
      seen.add(list.qid);
      lists.push(list);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  }
  return lists;
}
