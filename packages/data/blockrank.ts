/**
 * BlockRank in-context ranking: sample documents per query and lay out the
 * prompt as blocks with the per-token metadata of the structured attention.
 *
 * Layout (texts follow BlockRank's Mistral prompt):
 * - block 0 (kind prefix): `[BOS] userPrefix + instruction + "\nQuery: q\n\nDocuments:"`;
 * - block i = 1..n (kind local): `"\nID: i-1 | CONTENT: title text | END ID: i-1"`
 *   (documents are numbered from 0 in the prompt, as in BlockRank);
 * - block n+1 (kind global): the closing instruction with the query again,
 *   `userSuffix`, the answer prefix `"Final Answer: "`, then the answer
 *   `"[3, 17]"` + EOS — only these answer tokens carry labels.
 *
 * Each block is truncated to `maxBlockLength` tokens (the document content
 * or the query shrinks; the fixed text never does) and left-padded to a
 * multiple of `blockMultiple` (16). Positions are permutation invariant:
 * block 0 counts 0, 1, …; every document block starts right after block 0's
 * real tokens; the last block starts at `lastBlockOffset` (16384).
 *
 * @module
 */

import type { RankingExample } from "./blockrank_jsonl.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import { sampleWithoutReplacement, seededRandom, shuffleInPlace } from "./random.ts";
import { IGNORE_INDEX, roundUp, TokenKind, type TokenSequence } from "./sequence.ts";
import type { Document } from "./beir.ts";
import type { CandidateList } from "./candidates.ts";
import type { Qrels } from "./trec.ts";

/** Prompt texts of the layout (defaults: BlockRank's Mistral prompt). */
export interface BlockRankPrompt {
  /** Text opening the user turn (Mistral: `"[INST] "`). */
  userPrefix: string;
  /** Text closing the user turn (Mistral: `" [/INST]"`). */
  userSuffix: string;
  /** Task instruction at the start of block 0. */
  instruction: string;
  /** Closing instruction at the start of the last block (before `Query:`). */
  closing: string;
  /** Unlabeled text right before the answer. */
  answerPrefix: string;
  /** Text of a padding document when a query has fewer than `numDocuments`. */
  dummyDocument: string;
}

/** BlockRank's Mistral prompt texts. */
export const blockRankMistralPrompt: BlockRankPrompt = {
  userPrefix: "[INST] ",
  userSuffix: " [/INST]",
  instruction:
    "You will be given a query and a list of documents. Each document will be formatted as ID: <id> | CONTENT: <content> | END ID: <id>. You need to read carefully and understand all of them and your goal is to find all document(s) from the list that can help answer the query.",
  closing:
    "\n====== Now let's start! ======\nWhich document is most relevant to answer the query? Print out the ID of the document.",
  answerPrefix: "Final Answer: ",
  dummyDocument: "This is a dummy document.",
};

/** Options of the BlockRank layout and sampling. */
export interface BlockRankOptions {
  /** Documents per prompt; positives always kept. ≤ 0: all documents. */
  numDocuments: number;
  /** Tokens per block before padding. */
  maxBlockLength: number;
  /** Blocks are left-padded to a multiple of this (default 16). */
  blockMultiple?: number;
  /** Pad every block to the longest block (one `M × H` grid) instead of per block. */
  uniformBlocks?: boolean;
  /** Position of the last block's first token (default 16384). */
  lastBlockOffset?: number;
  /** Base seed of the sampling. */
  seed?: number;
  /**
   * `train`: sample negatives, shuffle, add dummy documents to reach
   * `numDocuments`, render the answer with labels. `eval`: keep the first
   * `numDocuments` in order, no labels, end with the answer's opening `[`
   * so the two scoring rows exist.
   */
  mode?: "train" | "eval";
  /** Prompt texts (default {@link blockRankMistralPrompt}). */
  prompt?: Partial<BlockRankPrompt>;
}

/** One laid-out BlockRank prompt. */
export interface BlockRankItem extends Required<TokenSequence> {
  /** Query id. */
  queryId: string;
  /** Original ids of the documents, in prompt order (dummies: `dummy_<i>`). */
  documentIds: string[];
  /** Prompt indices (0-based) of the relevant documents, ascending. */
  positives: number[];
  /** Per document: is it relevant? */
  isPositive: boolean[];
  /** Per document: token span `[start, end)` of its real tokens in the layout. */
  documentSpans: Array<[number, number]>;
  /** `[start, length]` of every block (padding included), block order. */
  blockRanges: Array<[number, number]>;
  /** Index of the first answer token (`[`); the auxiliary loss reads this row… */
  answerIndex: number;
  /** …and this one (the last token of the answer prefix). */
  beforeAnswerIndex: number;
}

interface Piece {
  ids: number[];
  /** Whether this piece may be cut (from its end) to fit. */
  cut?: boolean;
}

function fitBlock(pieces: Piece[], max: number, what: string): number[] {
  const fixed = pieces.reduce((n, p) => n + (p.cut ? 0 : p.ids.length), 0);
  let room = max - fixed;
  if (room < 0) {
    throw new RangeError(
      `${what}: its fixed text needs ${fixed} tokens, more than maxBlockLength ${max}`,
    );
  }
  const out: number[] = [];
  for (const piece of pieces) {
    if (!piece.cut) {
      out.push(...piece.ids);
      continue;
    }
    const kept = piece.ids.slice(0, Math.max(0, room));
    room -= kept.length;
    out.push(...kept);
  }
  return out;
}

/** Chooses and orders the documents of one prompt (seeded by seed, epoch, index). */
export function sampleBlockRankDocuments(
  example: RankingExample,
  options: BlockRankOptions,
  epoch: number,
  index: number,
): Document[] {
  const mode = options.mode ?? "train";
  const wanted = options.numDocuments > 0 ? options.numDocuments : example.documents.length;
  if (mode === "eval") return example.documents.slice(0, wanted);
  const random = seededRandom(options.seed ?? 42, epoch, index);
  const answers = new Set(example.answerIds);
  const positives = example.documents.filter((d) => answers.has(d.id)).slice(0, wanted);
  const negatives = example.documents.filter((d) => !answers.has(d.id));
  const chosen = [
    ...positives,
    ...sampleWithoutReplacement(random, negatives, wanted - positives.length),
  ];
  const dummy = { ...blockRankMistralPrompt, ...options.prompt }.dummyDocument;
  while (chosen.length < wanted) {
    chosen.push({ id: `dummy_${chosen.length}`, title: "", text: dummy });
  }
  return shuffleInPlace(random, chosen);
}

/** Lays out one example (documents already chosen and ordered). */
export function layoutBlockRank(
  tokenizer: TextTokenizer,
  example: RankingExample,
  documents: Document[],
  options: BlockRankOptions,
): BlockRankItem {
  const prompt = { ...blockRankMistralPrompt, ...options.prompt };
  const mode = options.mode ?? "train";
  const max = options.maxBlockLength;
  const multiple = options.blockMultiple ?? 16;
  const offset = options.lastBlockOffset ?? 16384;
  const enc = (text: string) => tokenizer.encode(text);
  const bos = tokenizer.bosId !== undefined ? [tokenizer.bosId] : [];
  const eos = tokenizer.eosId !== undefined ? [tokenizer.eosId] : [];

  const answers = new Set(example.answerIds);
  const isPositive = documents.map((d) => answers.has(d.id));
  const positives = isPositive.flatMap((p, i) => (p ? [i] : []));

  const blocks: number[][] = [];
  blocks.push(fitBlock(
    [
      { ids: [...bos, ...enc(`${prompt.userPrefix}${prompt.instruction}\nQuery: `)] },
      { ids: enc(example.query), cut: true },
      { ids: enc("\n\nDocuments:") },
    ],
    max,
    "block 0",
  ));
  documents.forEach((doc, i) => {
    const content = `${doc.title} ${doc.text}`.trim();
    blocks.push(fitBlock(
      [
        { ids: enc(`\nID: ${i} | CONTENT: `) },
        { ids: enc(content), cut: true },
        { ids: enc(` | END ID: ${i}`) },
      ],
      max,
      `document block ${i + 1}`,
    ));
  });
  const answerIds = mode === "train" ? [...enc(`[${positives.join(", ")}]`), ...eos] : enc("[");
  const prefixIds = enc(`${prompt.userSuffix}${prompt.answerPrefix}`);
  const last = fitBlock(
    [
      { ids: enc(`${prompt.closing}\nQuery: `) },
      { ids: enc(example.query), cut: true },
      { ids: enc("\nThe following document(s) can help answer the query:") },
      { ids: prefixIds },
      { ids: answerIds },
    ],
    max,
    "last block",
  );
  blocks.push(last);

  const lengths = blocks.map((b) => b.length);
  const uniform = roundUp(Math.max(...lengths), multiple);
  const item: BlockRankItem = {
    inputIds: [],
    labels: [],
    segment: [],
    block: [],
    kind: [],
    position: [],
    queryId: example.queryId,
    documentIds: documents.map((d) => d.id),
    positives,
    isPositive,
    documentSpans: [],
    blockRanges: [],
    answerIndex: -1,
    beforeAnswerIndex: -1,
  };
  const block0Length = lengths[0]!;
  const lastBlock = blocks.length - 1;
  blocks.forEach((ids, b) => {
    const padded = options.uniformBlocks ? uniform : roundUp(ids.length, multiple);
    const start = item.inputIds.length;
    item.blockRanges.push([start, padded]);
    const kind = b === 0 ? TokenKind.prefix : b === lastBlock ? TokenKind.global : TokenKind.local;
    const firstPosition = b === 0 ? 0 : b === lastBlock ? offset : block0Length;
    for (let p = 0; p < padded - ids.length; p++) {
      item.inputIds.push(tokenizer.padId);
      item.labels.push(IGNORE_INDEX);
      item.segment.push(-1);
      item.block.push(-1);
      item.kind.push(-1);
      item.position.push(0);
    }
    const realStart = item.inputIds.length;
    ids.forEach((id, t) => {
      item.inputIds.push(id);
      item.labels.push(IGNORE_INDEX);
      item.segment.push(0);
      item.block.push(b);
      item.kind.push(kind);
      item.position.push(firstPosition + t);
    });
    if (b > 0 && b < lastBlock) item.documentSpans.push([realStart, item.inputIds.length]);
  });
  const answerStart = item.inputIds.length - answerIds.length;
  if (mode === "train") {
    for (let i = answerStart; i < item.inputIds.length; i++) item.labels[i] = item.inputIds[i]!;
  }
  item.answerIndex = answerStart;
  item.beforeAnswerIndex = answerStart - 1;
  return item;
}

/** A BlockRank dataset: item `index` of `epoch` is a pure function of (seed, epoch, index). */
export class BlockRankDataset {
  /** Wraps examples (see `readRankingExamples`) with a tokenizer and options. */
  constructor(
    readonly examples: readonly RankingExample[],
    readonly tokenizer: TextTokenizer,
    readonly options: BlockRankOptions,
  ) {}

  /** Number of queries. */
  get length(): number {
    return this.examples.length;
  }

  /** The laid-out prompt of query `index` in `epoch`. */
  get(index: number, epoch = 0): BlockRankItem {
    const example = this.examples[index];
    if (!example) throw new RangeError(`index ${index} outside 0..${this.examples.length - 1}`);
    const documents = sampleBlockRankDocuments(example, this.options, epoch, index);
    return layoutBlockRank(this.tokenizer, example, documents, this.options);
  }
}

/**
 * Ranking examples from first-stage candidates and qrels: documents are the
 * hits in rank order, answers the hits graded `≥ minGrade`. Queries without
 * any answer are returned in `unanswered` (the caller decides; nothing is
 * dropped silently).
 */
export function rankingExamplesFromCandidates(
  lists: readonly CandidateList[],
  qrels: Qrels,
  minGrade = 1,
): { examples: RankingExample[]; unanswered: string[] } {
  const examples: RankingExample[] = [];
  const unanswered: string[] = [];
  for (const list of lists) {
    const judged = qrels.get(list.qid);
    const documents = list.hits.map((h) => ({ id: h.docid, title: "", text: h.content }));
    const answerIds = documents.filter((d) => (judged?.get(d.id) ?? 0) >= minGrade).map((d) =>
      d.id
    );
    if (answerIds.length === 0) unanswered.push(list.qid);
    else examples.push({ queryId: list.qid, query: list.query, documents, answerIds });
  }
  return { examples, unanswered };
}
