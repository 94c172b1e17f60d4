/**
 * HotpotQA in both layouts: the Hugging Face one (`context: {title[],
 * sentences[][]}`, `supporting_facts: {title[], sent_id[]}`, often without
 * `_id`) and the original one (`context: [[title, [sentences]]]`,
 * `supporting_facts: [[title, sent_id]]`, with `_id`). JSON array or JSONL.
 *
 * @module
 */

import { InputError, SkipLog } from "./input_error.ts";
import {
  asArray,
  asObject,
  describe,
  fieldLocation,
  type RecordLocation,
  stringField,
} from "./fields.ts";
import { type LocatedRecord, readJsonRecords, recordWhere } from "./json_records.ts";

/** One paragraph of a HotpotQA context. */
export interface HotpotParagraph {
  /** Wikipedia title. */
  title: string;
  /** Sentences, in order (HotpotQA keeps their leading spaces). */
  sentences: string[];
}

/** A supporting fact: sentence `sentence` of paragraph `title`. */
export interface SupportingFact {
  /** Paragraph title. */
  title: string;
  /** 0-based sentence index. */
  sentence: number;
}

/** One HotpotQA question. */
export interface HotpotExample {
  /** `_id`, or `"#<index>"` (0-based position in the file) when the file has none. */
  id: string;
  /** The question. */
  question: string;
  /** The answer text. */
  answer: string;
  /** `bridge` or `comparison` (`""` when absent). */
  type: string;
  /** `easy`, `medium` or `hard` (`""` when absent). */
  level: string;
  /** Supporting facts. */
  supportingFacts: SupportingFact[];
  /** Context paragraphs in file order. */
  context: HotpotParagraph[];
}

function stringArray(value: unknown, where: RecordLocation, field: string): string[] {
  return asArray(value, where, field).map((item, i) => {
    if (typeof item !== "string") {
      throw new InputError(
        fieldLocation(where, `${field}[${i}]`),
        `expected a string, found ${describe(item)}`,
      );
    }
    return item;
  });
}

function parseContext(value: unknown, where: RecordLocation): HotpotParagraph[] {
  if (Array.isArray(value)) {
    return value.map((pair, i) => {
      const field = `context[${i}]`;
      const items = asArray(pair, where, field);
      if (items.length !== 2 || typeof items[0] !== "string") {
        throw new InputError(fieldLocation(where, field), "expected [title, [sentences]]");
      }
      return { title: items[0], sentences: stringArray(items[1], where, `${field}[1]`) };
    });
  }
  const object = asObject(value, where, "context");
  const titles = stringArray(object["title"], where, "context.title");
  const sentences = asArray(object["sentences"], where, "context.sentences");
  if (sentences.length !== titles.length) {
    throw new InputError(
      fieldLocation(where, "context.sentences"),
      `${sentences.length} sentence lists for ${titles.length} titles`,
    );
  }
  return titles.map((title, i) => ({
    title,
    sentences: stringArray(sentences[i], where, `context.sentences[${i}]`),
  }));
}

function parseSupportingFacts(value: unknown, where: RecordLocation): SupportingFact[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) {
    return value.map((pair, i) => {
      const items = asArray(pair, where, `supporting_facts[${i}]`);
      if (typeof items[0] !== "string" || !Number.isInteger(items[1])) {
        throw new InputError(
          fieldLocation(where, `supporting_facts[${i}]`),
          "expected [title, sentence index]",
        );
      }
      return { title: items[0], sentence: items[1] as number };
    });
  }
  const object = asObject(value, where, "supporting_facts");
  const titles = stringArray(object["title"], where, "supporting_facts.title");
  const ids = asArray(object["sent_id"], where, "supporting_facts.sent_id");
  if (ids.length !== titles.length || ids.some((id) => !Number.isInteger(id))) {
    throw new InputError(
      fieldLocation(where, "supporting_facts.sent_id"),
      "expected one integer per title",
    );
  }
  return titles.map((title, i) => ({ title, sentence: ids[i] as number }));
}

/** Parses one HotpotQA record of either layout. */
export function parseHotpotExample(record: LocatedRecord, index: number): HotpotExample {
  const where = recordWhere(record);
  const object = asObject(record.value, where);
  const id = object["_id"] === undefined
    ? `#${index}`
    : stringField(object, "_id", where, { nonEmpty: true });
  return {
    id,
    question: stringField(object, "question", where, { nonEmpty: true }),
    answer: stringField(object, "answer", where),
    type: stringField(object, "type", where, { fallback: "" }),
    level: stringField(object, "level", where, { fallback: "" }),
    supportingFacts: parseSupportingFacts(object["supporting_facts"], where),
    context: parseContext(object["context"], where),
  };
}

/** Reads a HotpotQA file (either layout, JSON array or JSONL). */
export async function readHotpotQa(
  file: string,
  skip: SkipLog = new SkipLog(false),
): Promise<HotpotExample[]> {
  const examples: HotpotExample[] = [];
  const records = await readJsonRecords(file, skip);
  records.forEach((record, index) => {
    try {
      examples.push(parseHotpotExample(record, index));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  });
  return examples;
}

/** The supporting paragraphs of an example (those named by a supporting fact), in context order. */
export function supportingParagraphs(example: HotpotExample): HotpotParagraph[] {
  const titles = new Set(example.supportingFacts.map((f) => f.title));
  return example.context.filter((p) => titles.has(p.title));
}
