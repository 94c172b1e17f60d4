/**
 * Instruction/QA supervised fine-tuning: chat records to labelled tokens,
 * and HotpotQA questions to chat records (question + supporting context →
 * answer).
 *
 * @module
 */

import type { HotpotExample } from "./hotpotqa.ts";
import { supportingParagraphs } from "./hotpotqa.ts";
import { type ChatMessage, type ChatOptions, tokenizeChat } from "./chat.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import type { TokenSequence } from "./sequence.ts";

/** One SFT record. */
export interface SftRecord {
  /** Record id. */
  id: string;
  /** The conversation; assistant turns are the targets. */
  messages: ChatMessage[];
}

/** Options of {@link hotpotToSft}. */
export interface HotpotSftOptions {
  /** `supporting` (default): only paragraphs named by supporting facts; `all`: every paragraph. */
  context?: "supporting" | "all";
  /** Instruction before the context. */
  instruction?: string;
}

/**
 * A HotpotQA example as a chat: user = instruction, context paragraphs
 * (`title: sentences`), question; assistant = the answer.
 */
export function hotpotToSft(example: HotpotExample, options: HotpotSftOptions = {}): SftRecord {
  const paragraphs = (options.context ?? "supporting") === "all"
    ? example.context
    : supportingParagraphs(example);
  const context = paragraphs.map((p) => `${p.title}: ${p.sentences.join("").trim()}`).join("\n");
  const instruction = options.instruction ??
    "Answer the question using the context. Reply with the answer only.";
  return {
    id: example.id,
    messages: [
      {
        role: "user",
        content: `${instruction}\n\nContext:\n${context}\n\nQuestion: ${example.question}`,
      },
      { role: "assistant", content: example.answer },
    ],
  };
}

/** SFT dataset: records tokenised on demand with assistant-only labels. */
export class SftDataset {
  /** Wraps records. */
  constructor(
    readonly records: readonly SftRecord[],
    readonly tokenizer: TextTokenizer,
    readonly options: ChatOptions = {},
  ) {}

  /** Number of records. */
  get length(): number {
    return this.records.length;
  }

  /** Tokens and labels of record `index`. */
  get(index: number): TokenSequence {
    const record = this.records[index];
    if (!record) throw new RangeError(`index ${index} outside 0..${this.records.length - 1}`);
    return tokenizeChat(this.tokenizer, record.messages, this.options);
  }
}
