/**
 * Chat records → tokens with labels only on assistant turns (−100
 * elsewhere), under a small configurable chat template. Used by the SFT and
 * listwise datasets.
 *
 * Default template (Mistral instruct): `[BOS] [INST] {system}\n\n{user}
 * [/INST]{assistant}[EOS]`, repeated per turn; a system message is folded
 * into the first user turn. Each turn is tokenised separately, so the
 * boundaries between labelled and unlabelled tokens are exact.
 *
 * @module
 */

import type { TextTokenizer } from "./tokenizer.ts";
import { IGNORE_INDEX, type TokenSequence } from "./sequence.ts";

/** One chat message. */
export interface ChatMessage {
  /** Who speaks. */
  role: "system" | "user" | "assistant";
  /** What is said. */
  content: string;
}

/** The text around each turn. */
export interface ChatTemplate {
  /** Before a user turn. */
  userPrefix: string;
  /** After a user turn. */
  userSuffix: string;
  /** Before an assistant turn (unlabelled). */
  assistantPrefix: string;
  /** After an assistant turn (labelled; EOS is appended after it). */
  assistantSuffix: string;
  /** Between the system message and the first user message. */
  systemSeparator: string;
  /** Prepend BOS once. */
  bos: boolean;
  /** Append EOS after each assistant turn (labelled). */
  eosAfterAssistant: boolean;
}

/** Mistral-instruct template. */
export const mistralChatTemplate: ChatTemplate = {
  userPrefix: "[INST] ",
  userSuffix: " [/INST]",
  assistantPrefix: "",
  assistantSuffix: "",
  systemSeparator: "\n\n",
  bos: true,
  eosAfterAssistant: true,
};

/** Options of {@link tokenizeChat}. */
export interface ChatOptions {
  /** Template (default {@link mistralChatTemplate}). */
  template?: ChatTemplate;
  /** Truncate to this many tokens (the end is cut). */
  maxSeqLength?: number;
}

/** Tokenises a conversation; labels are the ids of assistant tokens (+EOS), −100 elsewhere. */
export function tokenizeChat(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): TokenSequence {
  const t = options.template ?? mistralChatTemplate;
  const inputIds: number[] = [];
  const labels: number[] = [];
  const push = (ids: number[], labelled: boolean) => {
    for (const id of ids) {
      inputIds.push(id);
      labels.push(labelled ? id : IGNORE_INDEX);
    }
  };
  if (t.bos && tokenizer.bosId !== undefined) push([tokenizer.bosId], false);
  let system = "";
  for (const message of messages) {
    if (message.role === "system") {
      system += message.content;
    } else if (message.role === "user") {
      const content = system ? `${system}${t.systemSeparator}${message.content}` : message.content;
      system = "";
      push(tokenizer.encode(`${t.userPrefix}${content}${t.userSuffix}`), false);
    } else {
      if (t.assistantPrefix) push(tokenizer.encode(t.assistantPrefix), false);
      push(tokenizer.encode(`${message.content}${t.assistantSuffix}`), true);
      if (t.eosAfterAssistant && tokenizer.eosId !== undefined) push([tokenizer.eosId], true);
    }
  }
  if (options.maxSeqLength !== undefined && inputIds.length > options.maxSeqLength) {
    inputIds.length = options.maxSeqLength;
    labels.length = options.maxSeqLength;
  }
  return { inputIds, labels };
}
