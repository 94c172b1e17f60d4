/**
 * Listwise (RankLLM / RankZephyr) training data: prompts with `[1] … [n]`
 * passages and the target permutation `[3] > [1] > …` (grade descending,
 * ties by first-stage rank), over sliding windows taken from the end of
 * the list as rank_llm does, plus first-token targets for FIRST-style
 * training.
 *
 * @module
 */

import type { CandidateList } from "./candidates.ts";
import type { Qrels } from "./trec.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import { type ChatMessage, type ChatTemplate, tokenizeChat } from "./chat.ts";
import type { TokenSequence } from "./sequence.ts";

/** rank_llm's system message. */
export const rankLlmSystemMessage =
  "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query.";

/** Options of {@link listwiseExamples}. */
export interface ListwiseOptions {
  /** Passages per prompt (default 20). */
  windowSize?: number;
  /** Step between windows (default 10). */
  stride?: number;
  /** Use candidates `[rankStart, rankEnd)` (default 0 and 100). */
  rankStart?: number;
  /** See `rankStart`. */
  rankEnd?: number;
  /** Passages are cut to this many words (rank_llm: 300). */
  maxPassageWords?: number;
  /** System message (default {@link rankLlmSystemMessage}). */
  systemMessage?: string;
}

/** One listwise example. */
export interface ListwiseExample {
  /** Query id. */
  qid: string;
  /** `[start, end)` of the window in the candidate list. */
  window: [number, number];
  /** Doc ids in prompt order (`[1]` first). */
  docids: string[];
  /** Grades in prompt order (0 when unjudged). */
  grades: number[];
  /** Target ranking as 0-based prompt indices, best first. */
  ranking: number[];
  /** The conversation: system, user prompt, assistant target `[3] > [1] > …`. */
  messages: ChatMessage[];
}

/** Window bounds as rank_llm's sliding window visits them: from the end towards the start. */
export function slidingWindows(
  rankStart: number,
  rankEnd: number,
  windowSize: number,
  stride: number,
): Array<[number, number]> {
  const windows: Array<[number, number]> = [];
  let end = rankEnd;
  let start = rankEnd - windowSize;
  while (end > rankStart && start + stride !== rankStart) {
    start = Math.max(start, rankStart);
    windows.push([start, end]);
    end -= stride;
    start -= stride;
  }
  return windows;
}

/** Builds the user prompt with rank_llm's wording (RankZephyr/RankVicuna prompt). */
export function listwisePrompt(query: string, passages: readonly string[]): string {
  const n = passages.length;
  const lines = [
    `I will provide you with ${n} passages, each indicated by a numerical identifier []. Rank the passages based on their relevance to the search query: ${query}.\n`,
  ];
  passages.forEach((p, i) => lines.push(`[${i + 1}] ${p}`));
  lines.push(
    `\nSearch Query: ${query}.\nRank the ${n} passages above based on their relevance to the search query. All the passages should be included and listed using identifiers, in descending order of relevance. The output format should be [] > [], e.g., [4] > [2]. Only respond with the ranking results, do not say any word or explain.`,
  );
  return lines.join("\n");
}

/** Examples for every window of every query. */
export function listwiseExamples(
  lists: readonly CandidateList[],
  qrels: Qrels,
  options: ListwiseOptions = {},
): ListwiseExample[] {
  const size = options.windowSize ?? 20;
  const stride = options.stride ?? 10;
  const words = options.maxPassageWords ?? 300;
  const out: ListwiseExample[] = [];
  for (const list of lists) {
    const end = Math.min(options.rankEnd ?? 100, list.hits.length);
    for (const [a, b] of slidingWindows(options.rankStart ?? 0, end, size, stride)) {
      const hits = list.hits.slice(a, b);
      const grades = hits.map((h) => qrels.get(list.qid)?.get(h.docid) ?? 0);
      // Stable sort: ties keep first-stage order.
      const ranking = hits.map((_, i) => i).sort((x, y) => grades[y]! - grades[x]! || x - y);
      const passages = hits.map((h) =>
        h.content.split(/\s+/).filter((w) => w).slice(0, words).join(" ")
      );
      out.push({
        qid: list.qid,
        window: [a, b],
        docids: hits.map((h) => h.docid),
        grades,
        ranking,
        messages: [
          { role: "system", content: options.systemMessage ?? rankLlmSystemMessage },
          { role: "user", content: listwisePrompt(list.query, passages) },
          { role: "assistant", content: ranking.map((i) => `[${i + 1}]`).join(" > ") },
        ],
      });
    }
  }
  return out;
}

/**
 * Where an identifier's first token sits in the encoding of `[i]`: the first
 * index at which the encodings of `[1]` and `[2]` differ (2 under
 * SentencePiece, which encodes `[1]` as `▁ [ 1 ]`; 1 under word tokenizers).
 */
export function identifierOffset(tokenizer: TextTokenizer): number {
  const a = tokenizer.encode("[1]"), b = tokenizer.encode("[2]");
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  if (p >= a.length || p >= b.length) {
    throw new Error('listwise: the tokenizer encodes "[1]" and "[2]" alike');
  }
  return p;
}

/**
 * The first token of each identifier `1`…`n` as it appears inside `[i]`
 * (in context: encoding the bare digit would give SentencePiece's `▁`).
 */
export function identifierTokenIds(tokenizer: TextTokenizer, n: number): number[] {
  const p = identifierOffset(tokenizer);
  return Array.from({ length: n }, (_, i) => tokenizer.encode(`[${i + 1}]`)[p]!);
}

/** A tokenised listwise example with the FIRST first-token target. */
export interface ListwiseTokens extends TokenSequence {
  /** Index of the first assistant token (the start of `[` before the first identifier). */
  firstTargetIndex: number;
  /** Position whose logits predict the first identifier of the answer (FIRST scores these). */
  scorePosition: number;
  /** Token id of each identifier `1…n` as the first generated token (FIRST scores these logits). */
  identifierTokenIds: number[];
}

/**
 * Tokenises an example with assistant-only labels. For FIRST-style
 * training, the logits at `scorePosition` predict the first identifier:
 * compare them over `identifierTokenIds` with the target `ranking`.
 * Identifiers ≥ 10 share their first token with 1…9 under digit-splitting
 * tokenizers (Llama/Mistral); use windows of ≤ 9 for FIRST there.
 *
 * @throws when the answer's tokens do not start with those of `[first]`
 *   (a tokenizer merging across the chat template), naming the query.
 */
export function tokenizeListwise(
  tokenizer: TextTokenizer,
  example: ListwiseExample,
  template?: ChatTemplate,
  maxSeqLength?: number,
): ListwiseTokens {
  const sequence = tokenizeChat(tokenizer, example.messages, { template, maxSeqLength });
  const firstTargetIndex = sequence.labels.findIndex((l) => l !== -100);
  const offset = identifierOffset(tokenizer);
  const identifiers = identifierTokenIds(tokenizer, example.docids.length);
  const first = example.ranking[0]!;
  if (firstTargetIndex < 0 || sequence.inputIds[firstTargetIndex + offset] !== identifiers[first]) {
    throw new Error(
      `listwise: the answer of query "${example.qid}" window [${example.window.join(", ")}) ` +
        `does not start with the tokens of "[${first + 1}]" (truncated, or the tokenizer ` +
        "merges across the chat template)",
    );
  }
  return {
    ...sequence,
    firstTargetIndex,
    scorePosition: firstTargetIndex + offset - 1,
    identifierTokenIds: identifiers,
  };
}
