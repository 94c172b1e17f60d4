/**
 * Bi-encoder collator (Trove's `RetrievalCollator`): tokenises queries and
 * passages of a batch of groups into two padded batches. Trove's names
 * `query_max_len` and `passage_max_len` are accepted as well
 * ({@link retrievalCollatorOptions}).
 *
 * @module
 */

import type { Document } from "./beir.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import { troveSpelling } from "./trove_names.ts";
import { collate, type CollatedBatch, encodeText } from "./sequence.ts";

/** Options of {@link collateRetrieval}. */
export interface RetrievalCollatorOptions {
  /** Max query tokens (BOS/EOS included). */
  queryMaxLen: number;
  /** Max passage tokens (BOS/EOS included). */
  passageMaxLen: number;
  /** Text before a query (e.g. `"query: "`). */
  queryPrefix?: string;
  /** Text before a passage (e.g. `"passage: "`). */
  passagePrefix?: string;
  /** Append EOS (last-token pooling needs it; default true). */
  appendEos?: boolean;
  /** Prepend BOS (default true). */
  prependBos?: boolean;
  /** Pad side (default right; last-token pooling often uses left). */
  padSide?: "left" | "right";
  /** Round lengths up to a multiple (default 8). */
  padToMultipleOf?: number;
}

/** {@link RetrievalCollatorOptions} with each length under irforge's name or Trove's. */
export type RetrievalCollatorInput =
  & Omit<RetrievalCollatorOptions, "queryMaxLen" | "passageMaxLen">
  & (
    | { queryMaxLen: number; query_max_len?: number }
    | { queryMaxLen?: number; query_max_len: number }
  )
  & (
    | { passageMaxLen: number; passage_max_len?: number }
    | { passageMaxLen?: number; passage_max_len: number }
  );

/**
 * The options under irforge's names; an irforge name and its Trove name
 * both given with different values is a `TypeError`.
 *
 * @example
 * ```ts
 * import { retrievalCollatorOptions } from "@irforge/data";
 * retrievalCollatorOptions({ query_max_len: 32, passage_max_len: 128 });
 * // { queryMaxLen: 32, passageMaxLen: 128 }
 * ```
 */
export function retrievalCollatorOptions(
  input: RetrievalCollatorInput,
): RetrievalCollatorOptions {
  return troveSpelling(input, {
    query_max_len: "queryMaxLen",
    passage_max_len: "passageMaxLen",
  }, "collateRetrieval");
}

/** Tokenised batch of groups. */
export interface RetrievalBatch {
  /** One row per query. */
  queries: CollatedBatch;
  /** `groups × groupSize` rows, group-major. */
  passages: CollatedBatch;
  /** Labels per passage row (from the dataset item). */
  labels: Float32Array;
}

/** Passage text as BEIR models see it: `title text` (title omitted when empty). */
export function passageText(document: Document): string {
  return document.title ? `${document.title} ${document.text}` : document.text;
}

/** Collates dataset items (`BinaryItem`/`GradedItem`) into query and passage batches. */
export function collateRetrieval(
  items: ReadonlyArray<{ query: string; passages: Document[]; labels: number[] }>,
  tokenizer: TextTokenizer,
  input: RetrievalCollatorInput,
): RetrievalBatch {
  const options = retrievalCollatorOptions(input);
  const encode = (text: string, maxLength: number) => {
    const ids = encodeText(tokenizer, text, {
      maxLength,
      appendEos: options.appendEos ?? true,
      prependBos: options.prependBos ?? true,
    });
    return { inputIds: ids, labels: ids.map(() => -100) };
  };
  const pad = {
    padId: tokenizer.padId,
    side: options.padSide ?? "right",
    padToMultipleOf: options.padToMultipleOf ?? 8,
  };
  const queries = collate(
    items.map((it) => encode(`${options.queryPrefix ?? ""}${it.query}`, options.queryMaxLen)),
    pad,
  );
  const passages = collate(
    items.flatMap((it) =>
      it.passages.map((p) =>
        encode(`${options.passagePrefix ?? ""}${passageText(p)}`, options.passageMaxLen)
      )
    ),
    pad,
  );
  return { queries, passages, labels: Float32Array.from(items.flatMap((it) => it.labels)) };
}
