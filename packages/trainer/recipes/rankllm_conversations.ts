/**
 * RankLLM's own training file (castorini/rank_llm `training/train_rankllm.py`,
 * `--train_dataset_path`) for the listwise recipe's `ranking` and `combined`
 * objectives: a JSON list (or JSONL) of ShareGPT records
 * `{"conversations": [system, human, gpt]}` whose gpt turn is the target
 * permutation over letter identifiers, `[C] > [A] > [B]` (FIRST's alpha
 * data; upstream's `RankingDataset`/`GenerationDataset(combined=True)` read
 * the letters only).
 *
 * As upstream builds its rank labels, the permutation gives each identifier
 * its rank (0 = first); the letters must be `A`, `B`, … without a gap, each
 * once. The items carry the ranks as grades `n − rank` (the first identifier
 * gets `n`, the last 1), which only order the identifiers: the listwise
 * recipe's first-token objectives score the logits of the identifier tokens
 * at the position that predicts the first identifier of the gpt turn (the
 * token after `[`, where upstream reads `logits[source_len]`) with upstream's
 * `compute_ranking_loss` (`rankLlmRankingLoss` of `@irforge/losses`): the
 * targets are the model's own identifier logits sorted and reassigned by the
 * permutation (identifier i gets the rank(i)-th largest logit, gradient
 * through both), with `training.loss` `lambdarank`, `listnet` or `ranknet`
 * (`weighted`) as upstream's `loss.py` defines them, one loss per record and
 * the mean over the batch, plus the LM loss on the gpt turn for `combined`.
 *
 * @example
 * ```ts ignore
 * const records = await readRankLlmConversations("rank_zephyr_alpha.json");
 * const { items, identifierIds } = conversationItems(tokenizer, records!, 4096);
 * ```
 *
 * @module
 */

import {
  type ChatMessage,
  conversationsToSft,
  fieldLocation,
  InputError,
  type InputLocation,
  isConversationsRecord,
  type ListwiseExample,
  readJsonRecords,
  recordWhere,
  type TextTokenizer,
  tokenizeChat,
} from "@irforge/data";
import type { ListwiseItem } from "./listwise.ts";

/** One conversations record with the permutation of its gpt turn. */
export interface RankLlmConversation {
  /** Record id (`id`, else `#<index>`). */
  id: string;
  /** System, user (human) and assistant (gpt) turns. */
  messages: ChatMessage[];
  /** Identifier indices (`A` = 0) best first, as the gpt turn lists them. */
  ranking: number[];
  /** Where the gpt turn is (for errors). */
  where: InputLocation;
}

const LETTER_A = "A".charCodeAt(0);

/**
 * The records of `path` when it is a conversations file (its first record
 * has `conversations`), else null (a rank_llm candidates file).
 */
export async function readRankLlmConversations(
  path: string,
): Promise<RankLlmConversation[] | null> {
  const records = await readJsonRecords(path);
  if (records.length === 0 || !isConversationsRecord(records[0]!.value)) return null;
  return records.map((record, index) => {
    const chat = conversationsToSft(record, index);
    const last = chat.messages.length - 1;
    const where = fieldLocation(recordWhere(record), `conversations[${last}].value`);
    return {
      id: chat.id,
      messages: chat.messages,
      ranking: permutationOf(chat.messages[last]!.content, where),
      where,
    };
  });
}

/**
 * The permutation a gpt turn states, `[C] > [A] > [B]` → `[2, 0, 1]`: its
 * letter identifiers in order; they must be `A`… without a gap, each once.
 */
export function permutationOf(text: string, where: InputLocation): number[] {
  const letters = [...text.matchAll(/\[([A-Z])\]/g)].map((m) => m[1]!.charCodeAt(0) - LETTER_A);
  if (letters.length < 2) {
    throw new InputError(
      where,
      `expected a ranking of letter identifiers such as "[B] > [A]" (RankLLM's ranking and ` +
        `combined objectives read letters), found ${JSON.stringify(text.slice(0, 60))}`,
    );
  }
  const seen = new Set(letters);
  const missing = letters.map((_, i) => i).filter((i) => !seen.has(i));
  if (seen.size !== letters.length || missing.length > 0) {
    const name = (i: number) => `[${String.fromCharCode(LETTER_A + i)}]`;
    throw new InputError(
      where,
      seen.size !== letters.length
        ? `an identifier appears twice in the ranking ${JSON.stringify(text.slice(0, 60))}`
        : `the ranking names ${letters.length} identifiers but not ${
          missing.map(name).join(", ")
        } (expected [A] … ${name(letters.length - 1)}, each once)`,
    );
  }
  return letters;
}

/** Where a letter's token sits in the encoding of `[L]` (the first index where `[A]` and `[B]` differ). */
function letterOffset(tokenizer: TextTokenizer): number {
  const a = tokenizer.encode("[A]"), b = tokenizer.encode("[B]");
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  if (p >= a.length || p >= b.length) {
    throw new Error('rankllm: the tokenizer encodes "[A]" and "[B]" alike');
  }
  return p;
}

/** The token of each letter identifier `A`… inside `[L]`; they must differ (one logit each). */
export function letterIdentifierIds(tokenizer: TextTokenizer, n: number): number[] {
  const p = letterOffset(tokenizer);
  const ids = Array.from(
    { length: n },
    (_, i) => tokenizer.encode(`[${String.fromCharCode(LETTER_A + i)}]`)[p]!,
  );
  const first = new Map<number, number>();
  ids.forEach((id, i) => {
    const j = first.get(id);
    if (j !== undefined) {
      throw new Error(
        `rankllm: identifiers [${String.fromCharCode(LETTER_A + j)}] and ` +
          `[${String.fromCharCode(LETTER_A + i)}] start with the same token`,
      );
    }
    first.set(id, i);
  });
  return ids;
}

/**
 * Listwise training items of `records`: the conversation under the chat
 * template (labels on the gpt turn + EOS), grades `n − rank` per identifier
 * (the permutation, for `rankLlmRankingLoss`) and the position whose logits
 * predict the first identifier.
 */
export function conversationItems(
  tokenizer: TextTokenizer,
  records: readonly RankLlmConversation[],
  maxSeqLength: number,
): { items: ListwiseItem[]; identifierIds: number[] } {
  const longest = Math.max(...records.map((r) => r.ranking.length));
  const identifierIds = letterIdentifierIds(tokenizer, longest);
  const offset = letterOffset(tokenizer);
  const items = records.map((record): ListwiseItem => {
    const { inputIds, labels } = tokenizeChat(tokenizer, record.messages);
    if (inputIds.length > maxSeqLength) {
      throw new InputError(
        record.where,
        `the conversation needs ${inputIds.length} tokens, more than data.max_seq_length ` +
          `${maxSeqLength}`,
      );
    }
    const targetStart = labels.findIndex((l) => l !== -100);
    const n = record.ranking.length;
    if (inputIds[targetStart + offset] !== identifierIds[record.ranking[0]!]) {
      throw new InputError(
        record.where,
        "the gpt turn does not start with its first identifier's tokens (the tokenizer merges " +
          "across the chat template)",
      );
    }
    const grades = new Array<number>(n).fill(0);
    record.ranking.forEach((identifier, rank) => (grades[identifier] = n - rank));
    const example: ListwiseExample = {
      qid: record.id,
      window: [0, n],
      docids: Array.from({ length: n }, (_, i) => String.fromCharCode(LETTER_A + i)),
      grades,
      ranking: record.ranking,
      messages: record.messages,
    };
    return { example, inputIds, labels, targetStart, scorePosition: targetStart + offset - 1 };
  });
  return { items, identifierIds };
}
