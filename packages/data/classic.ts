/**
 * Classic test collections (Cranfield, CISI, CACM and other SMART-format
 * collections, NPL/Vaswani in TREC `<DOC>` format) parsed into a
 * {@link BeirCollection}.
 *
 * Conventions, applied the same way to every collection:
 * - text of a multi-line field is joined with single spaces and trimmed;
 * - numeric ids lose leading zeros (`001` → `1`), so `qrels.text` in CACM
 *   (`01 1410 0 0`) matches `.I 1` in `query.text`;
 * - Cranfield queries are numbered 1..225 by position, because `cranqrel`
 *   numbers them that way while `cran.qry` has `.I 001 … 365`;
 * - Cranfield grades 1 (complete answer) … 4 (minimum interest), 5 (none)
 *   become BEIR scores `5 − grade` so that higher means more relevant
 *   (4, 3, 2, 1, 0); the `-1` line each query carries is dropped and counted;
 * - SMART/CISI qrels are binary: every listed pair gets score 1; NPL's are
 *   TREC qrels and keep their grades (all 1).
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";
import { type NumberedLine, splitLines } from "./lines.ts";
import type { BeirCollection, Corpus, Queries } from "./beir.ts";
import { parseQrels, type Qrels } from "./trec.ts";

/** One `.I` record of a SMART file. */
export interface SmartRecord {
  /** The id after `.I`, leading zeros removed when numeric. */
  id: string;
  /** Line of the `.I` marker. */
  line: number;
  /** Field letter (`T`, `A`, `B`, `W`, `X`, …) → text, lines joined by spaces. */
  fields: Map<string, string>;
}

const markerPattern = /^\.([A-Z])(?:\s+(.*))?$/;

/** Removes leading zeros from a numeric id (`"001"` → `"1"`); other ids unchanged. */
export function normalizeId(id: string): string {
  return /^\d+$/.test(id) ? String(Number(id)) : id;
}

/**
 * Field markers of the SMART collections (Cranfield, CISI, CACM, MED, …):
 * `.I` id, `.T` title, `.A` authors, `.B` bibliography, `.W` text, `.X`
 * cross-references, `.N` entry date, `.K` keywords, `.C` categories. Any
 * other letter is a damaged or foreign file, not a field to drop silently.
 */
export const SMART_MARKERS: readonly string[] = ["I", "T", "A", "B", "W", "X", "N", "K", "C"];

/**
 * Parses SMART text (`.I id`, then field markers `.T`, `.W`, … on their own
 * lines). An unknown marker or a non-numeric `.I` id stops with the file and
 * line, or under `skip` is counted: an unknown field's text is dropped, a
 * record with a bad id is left out whole.
 */
export function parseSmart(
  text: string,
  file: string,
  skip: SkipLog = new SkipLog(false),
): SmartRecord[] {
  const records: SmartRecord[] = [];
  let current: SmartRecord | undefined;
  let field: string | undefined;
  let skipping = false; // inside a record left out under skip
  let buffer: string[] = [];
  const flush = () => {
    if (current && field !== undefined) {
      const joined = buffer.join(" ").replace(/\s+/g, " ").trim();
      const before = current.fields.get(field);
      current.fields.set(field, before ? `${before} ${joined}`.trim() : joined);
    }
    buffer = [];
  };
  for (const { text: raw, line } of splitLines(text)) {
    const marker = markerPattern.exec(raw);
    if (marker) {
      flush();
      const letter = marker[1]!;
      const rest = (marker[2] ?? "").trim();
      if (letter === "I") {
        if (rest === "") throw new InputError({ file, line, field: ".I" }, "record without an id");
        if (!/^\d+$/.test(rest)) {
          skip.report(
            new InputError({ file, line, field: ".I" }, `id "${rest}" is not a number`),
          );
          current = undefined;
          field = undefined;
          skipping = true;
          continue;
        }
        current = { id: normalizeId(rest), line, fields: new Map() };
        records.push(current);
        field = undefined;
        skipping = false;
      } else {
        if (skipping) continue;
        if (!current) {
          throw new InputError({ file, line, field: `.${letter}` }, "field before the first .I");
        }
        if (!SMART_MARKERS.includes(letter)) {
          skip.report(
            new InputError(
              { file, line, field: `.${letter}` },
              `unknown SMART marker (known: ${SMART_MARKERS.map((m) => `.${m}`).join(" ")})`,
            ),
          );
          field = undefined; // its text is dropped
          continue;
        }
        field = letter;
        if (rest !== "") buffer.push(rest);
      }
      continue;
    }
    if (skipping) continue;
    if (!current) {
      if (raw.trim() === "") continue;
      throw new InputError({ file, line }, "text before the first .I record");
    }
    if (field !== undefined) buffer.push(raw);
  }
  flush();
  return records;
}

/** Throws when a file gave nothing: an empty input is a mistake, not an empty collection. */
function requireSome(count: number, file: string, what: string): void {
  if (count === 0) throw new InputError({ file }, `no ${what} found (is the file empty?)`);
}

/** What {@link smartCorpus} reads from each record. */
export interface SmartCorpusFields {
  /** Field holding the title (default `T`). */
  title?: string;
  /** Field holding the body (default `W`). */
  text?: string;
}

/**
 * Builds a corpus from SMART records: title from `.T`, text from `.W`.
 * Duplicated ids are errors; empty records are kept (see {@link emptyDocuments}).
 */
export function smartCorpus(
  records: SmartRecord[],
  file: string,
  skip: SkipLog = new SkipLog(false),
  fields: SmartCorpusFields = {},
): Corpus {
  const corpus: Corpus = new Map();
  for (const record of records) {
    const title = record.fields.get(fields.title ?? "T") ?? "";
    const text = record.fields.get(fields.text ?? "W") ?? "";
    if (corpus.has(record.id)) {
      skip.report(
        new InputError(
          { file, line: record.line, field: ".I" },
          `duplicated document id "${record.id}"`,
        ),
      );
      continue;
    }
    // Kept even when empty: Cranfield's documents 471 and 995 are empty
    // records, and dropping them would change the collection's size.
    corpus.set(record.id, { id: record.id, title, text });
  }
  return corpus;
}

/** Ids of documents whose title and text are both empty (reported by the converter). */
export function emptyDocuments(corpus: Corpus): string[] {
  return [...corpus.values()].filter((d) => d.title === "" && d.text === "").map((d) => d.id);
}

/** Options of {@link smartQueries}. */
export interface SmartQueriesOptions {
  /** Count bad records instead of throwing. */
  skip?: SkipLog;
  /** Number queries 1..n by position instead of using `.I` (Cranfield). */
  idsByPosition?: boolean;
}

/**
 * Builds queries from SMART records (text from `.W`). A trailing `.I` record
 * with no fields at all is an end-of-file marker (CACM ends with `.I 0`) and
 * is ignored; any other query without text is an error.
 */
export function smartQueries(
  records: SmartRecord[],
  file: string,
  options: SmartQueriesOptions = {},
): Queries {
  const skip = options.skip ?? new SkipLog(false);
  const queries: Queries = new Map();
  records.forEach((record, index) => {
    const isEndMarker = index === records.length - 1 && record.fields.size === 0;
    if (isEndMarker) return;
    const id = options.idsByPosition ? String(index + 1) : record.id;
    const text = record.fields.get("W") ?? "";
    if (text === "") {
      skip.report(
        new InputError({ file, line: record.line, field: ".W" }, `query "${record.id}" is empty`),
      );
      return;
    }
    if (queries.has(id)) {
      skip.report(
        new InputError({ file, line: record.line, field: ".I" }, `duplicated query id "${id}"`),
      );
      return;
    }
    queries.set(id, text);
  });
  return queries;
}

/** Options of the qrels parsers of this module. */
export interface ClassicQrelsOptions {
  /** Count bad lines instead of throwing. */
  skip?: SkipLog;
  /** Known documents: an unknown id is an error. */
  corpus?: { has(id: string): boolean };
  /** Known queries: an unknown id is an error. */
  queries?: { has(id: string): boolean };
}

/** Result of a qrels parse that may drop lines on purpose (Cranfield `-1`). */
export interface ClassicQrels {
  /** The judgments. */
  qrels: Qrels;
  /** Lines dropped by design (not errors), e.g. Cranfield's `-1` lines. */
  dropped: number;
}

/**
 * Parses whitespace-separated `qid docid …` lines as binary judgments
 * (score 1): CISI.REL (`1 28 0 0.000000`), CACM `qrels.text`
 * (`01 1410 0 0`). Columns after the second are ignored.
 */
export function parseBinaryQrels(
  text: string,
  file: string,
  options: ClassicQrelsOptions = {},
): Qrels {
  return parseClassicQrels(text, file, options, (fields) => {
    return { qid: fields[0]!, docid: fields[1]!, score: 1 };
  }).qrels;
}

/**
 * Parses `cranqrel` (`qid docid grade`): drops the `-1` line of each query
 * and maps grades 1…5 to scores `5 − grade`.
 */
export function parseCranfieldQrels(
  text: string,
  file: string,
  options: ClassicQrelsOptions = {},
): ClassicQrels {
  return parseClassicQrels(text, file, options, (fields, line) => {
    if (fields.length < 3) {
      throw new InputError(
        { file, line },
        `expected "qid docid grade", found ${fields.length} fields`,
      );
    }
    const grade = Number(fields[2]);
    if (grade === -1) return undefined;
    if (!Number.isInteger(grade) || grade < 1 || grade > 5) {
      throw new InputError(
        { file, line, field: "grade" },
        `"${fields[2]}" is not a Cranfield grade (1…5 or -1)`,
      );
    }
    return { qid: fields[0]!, docid: fields[1]!, score: 5 - grade };
  });
}

function parseClassicQrels(
  text: string,
  file: string,
  options: ClassicQrelsOptions,
  read: (
    fields: string[],
    line: number,
  ) => { qid: string; docid: string; score: number } | undefined,
): ClassicQrels {
  const skip = options.skip ?? new SkipLog(false);
  const qrels: Qrels = new Map();
  let dropped = 0;
  for (const { text: raw, line } of splitLines(text)) {
    if (raw.trim() === "") continue;
    const fields = raw.trim().split(/\s+/);
    try {
      if (fields.length < 2) {
        throw new InputError(
          { file, line },
          `expected "qid docid …", found ${fields.length} field`,
        );
      }
      const judged = read(fields, line);
      if (!judged) {
        dropped++;
        continue;
      }
      const qid = normalizeId(judged.qid);
      const docid = normalizeId(judged.docid);
      if (options.queries && !options.queries.has(qid)) {
        throw new InputError({ file, line, field: "qid" }, `unknown query id "${qid}"`);
      }
      if (options.corpus && !options.corpus.has(docid)) {
        throw new InputError({ file, line, field: "docid" }, `unknown document id "${docid}"`);
      }
      let docs = qrels.get(qid);
      if (!docs) qrels.set(qid, docs = new Map());
      if (docs.has(docid)) {
        throw new InputError(
          { file, line, field: "docid" },
          `document "${docid}" is judged twice for query "${qid}"`,
        );
      }
      docs.set(docid, judged.score);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  }
  return { qrels, dropped };
}

/** Parses TREC `<DOC><DOCNO>id</DOCNO>text</DOC>` documents (NPL/Vaswani). */
export function parseTrecDocuments(
  text: string,
  file: string,
  skip: SkipLog = new SkipLog(false),
): Corpus {
  return parseTagged(text, file, "DOC", "DOCNO", undefined, skip);
}

/** Parses TREC topics `<top><num>id</num><title>text</title></top>` (NPL/Vaswani). */
export function parseTrecTopics(
  text: string,
  file: string,
  skip: SkipLog = new SkipLog(false),
): Queries {
  const corpus = parseTagged(text, file, "top", "num", "title", skip);
  const queries: Queries = new Map();
  for (const doc of corpus.values()) queries.set(doc.id, doc.text);
  return queries;
}

/** Shared parser for `<DOC>`/`<top>` records, tracking line numbers. */
function parseTagged(
  text: string,
  file: string,
  recordTag: string,
  idTag: string,
  textTag: string | undefined,
  skip: SkipLog,
): Corpus {
  const corpus: Corpus = new Map();
  const lines: NumberedLine[] = splitLines(text);
  let open: { line: number; body: string[] } | undefined;
  const openTag = `<${recordTag}>`;
  const closeTag = `</${recordTag}>`;
  for (const { text: raw, line } of lines) {
    const trimmed = raw.trim();
    if (trimmed === openTag) {
      if (open) throw new InputError({ file, line }, `${openTag} inside an open ${openTag}`);
      open = { line, body: [] };
      continue;
    }
    if (trimmed === closeTag) {
      if (!open) throw new InputError({ file, line }, `${closeTag} without ${openTag}`);
      try {
        const record = readTagged(open.body.join("\n"), file, open.line, idTag, textTag);
        if (corpus.has(record.id)) {
          throw new InputError(
            { file, line: open.line, field: idTag },
            `duplicated id "${record.id}"`,
          );
        }
        corpus.set(record.id, record);
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        skip.report(error);
      }
      open = undefined;
      continue;
    }
    if (open) open.body.push(raw);
    else if (trimmed !== "") throw new InputError({ file, line }, `text outside ${openTag}`);
  }
  if (open) throw new InputError({ file, line: open.line }, `${openTag} is never closed`);
  return corpus;
}

function readTagged(
  body: string,
  file: string,
  line: number,
  idTag: string,
  textTag: string | undefined,
): { id: string; title: string; text: string } {
  const idMatch = new RegExp(`<${idTag}>([\\s\\S]*?)</${idTag}>`).exec(body);
  if (!idMatch) throw new InputError({ file, line, field: idTag }, `missing <${idTag}>`);
  const id = normalizeId(idMatch[1]!.trim());
  if (id === "") throw new InputError({ file, line, field: idTag }, "empty id");
  let content: string;
  if (textTag) {
    const textMatch = new RegExp(`<${textTag}>([\\s\\S]*?)</${textTag}>`).exec(body);
    if (!textMatch) throw new InputError({ file, line, field: textTag }, `missing <${textTag}>`);
    content = textMatch[1]!;
  } else {
    content = body.replace(idMatch[0], "");
  }
  const text = content.replace(/\s+/g, " ").trim();
  if (text === "") {
    throw new InputError({ file, line, field: textTag ?? "text" }, `"${id}" is empty`);
  }
  return { id, title: "", text };
}

/** Result of a classic-collection conversion. */
export interface ClassicCollection extends BeirCollection {
  /** Lines dropped by design (Cranfield `-1` grades), reported to the user. */
  droppedQrelLines: number;
}

/** Files of a classic collection. */
export interface ClassicFiles {
  /** Document file. */
  documents: string;
  /** Query file. */
  queries: string;
  /** Judgment file. */
  qrels: string;
}

/** Reads Cranfield (`cran.all.1400`, `cran.qry`, `cranqrel`). */
export async function readCranfield(
  files: ClassicFiles,
  skip: SkipLog = new SkipLog(false),
): Promise<ClassicCollection> {
  const corpus = smartCorpus(
    parseSmart(await Deno.readTextFile(files.documents), files.documents, skip),
    files.documents,
    skip,
  );
  requireSome(corpus.size, files.documents, "documents");
  const queries = smartQueries(
    parseSmart(await Deno.readTextFile(files.queries), files.queries, skip),
    files.queries,
    { skip, idsByPosition: true },
  );
  requireSome(queries.size, files.queries, "queries");
  const { qrels, dropped } = parseCranfieldQrels(
    await Deno.readTextFile(files.qrels),
    files.qrels,
    {
      skip,
      corpus,
      queries,
    },
  );
  requireSome(qrels.size, files.qrels, "judgments");
  return { corpus, queries, qrels, droppedQrelLines: dropped };
}

/**
 * Reads a SMART collection with binary `qid docid …` judgments: CISI
 * (`CISI.ALL/.QRY/.REL`), CACM (`cacm.all`, `query.text`, `qrels.text`).
 */
export async function readSmart(
  files: ClassicFiles,
  skip: SkipLog = new SkipLog(false),
): Promise<ClassicCollection> {
  const corpus = smartCorpus(
    parseSmart(await Deno.readTextFile(files.documents), files.documents, skip),
    files.documents,
    skip,
  );
  requireSome(corpus.size, files.documents, "documents");
  const queries = smartQueries(
    parseSmart(await Deno.readTextFile(files.queries), files.queries, skip),
    files.queries,
    { skip },
  );
  requireSome(queries.size, files.queries, "queries");
  const qrels = parseBinaryQrels(await Deno.readTextFile(files.qrels), files.qrels, {
    skip,
    corpus,
    queries,
  });
  requireSome(qrels.size, files.qrels, "judgments");
  return { corpus, queries, qrels, droppedQrelLines: 0 };
}

/** Reads NPL/Vaswani (`doc-text.trec`, `query-text.trec`, TREC `qrels`). */
export async function readNpl(
  files: ClassicFiles,
  skip: SkipLog = new SkipLog(false),
): Promise<ClassicCollection> {
  const corpus = parseTrecDocuments(
    await Deno.readTextFile(files.documents),
    files.documents,
    skip,
  );
  requireSome(corpus.size, files.documents, "documents");
  const queries = parseTrecTopics(await Deno.readTextFile(files.queries), files.queries, skip);
  requireSome(queries.size, files.queries, "queries");
  const qrels = parseQrels(await Deno.readTextFile(files.qrels), files.qrels, {
    skip,
    knownDocuments: corpus,
    knownQueries: queries,
  });
  requireSome(qrels.size, files.qrels, "judgments");
  return { corpus, queries, qrels, droppedQrelLines: 0 };
}
