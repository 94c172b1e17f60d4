/**
 * Training files of other projects, read as they are into SFT chat records:
 *
 * - qa-expert's multi-hop QA records (khaimaitien/qa-expert-multi-hop-qa):
 *   `{question, answer, multihop, sub_questions: [{question, answer,
 *   paragraph, long_answer}], final_answer, …}`. The conversation is
 *   qa-expert's retrieval dialogue: the user asks; the assistant calls
 *   `retrieve` once per sub-question (after the previous sub-answer),
 *   written `<|bof|>retrieve:\n{"query": …}<|eof|>`; each retrieved
 *   paragraph comes back as `retrieved context: …`; the last assistant turn
 *   is the last sub-answer and the final answer. Every assistant turn is a
 *   target.
 * - RankLLM's training file (ShareGPT layout): `{"conversations": [{"from":
 *   "system", "value"}, {"from": "human", …}, {"from": "gpt", …}]}`: system,
 *   user and the target permutation.
 *
 * @module
 */

import { type ChatMessage } from "./chat.ts";
import { asArray, asObject, describe, fieldLocation, stringField } from "./fields.ts";
import { InputError } from "./input_error.ts";
import { type LocatedRecord, recordWhere } from "./json_records.ts";
import type { SftRecord } from "./sft.ts";

/** The system turn of a qa-expert conversation (irforge's wording of its retrieval instruction). */
export const QA_EXPERT_SYSTEM: string =
  "The assistant answers the user's question. To find what it needs it calls the function " +
  "`retrieve` with one parameter, query (string); a complex question may need several calls.";

/** Whether a parsed record has qa-expert's multi-hop layout. */
export function isQaExpertRecord(value: unknown): boolean {
  return value !== null && typeof value === "object" && "sub_questions" in value &&
    "final_answer" in value;
}

/** Whether a parsed record has the ShareGPT `conversations` layout (RankLLM). */
export function isConversationsRecord(value: unknown): boolean {
  return value !== null && typeof value === "object" && "conversations" in value;
}

/** qa-expert's function-call text for a `retrieve` call. */
export function retrieveCall(query: string): string {
  // Python's json.dumps({"query": q}, ensure_ascii=False) puts a space after the colon.
  return `<|bof|>retrieve:\n{"query": ${JSON.stringify(query)}}<|eof|>`;
}

/** One qa-expert multi-hop record as a chat (see the module doc). */
export function qaExpertToSft(record: LocatedRecord, index: number): SftRecord {
  const where = recordWhere(record);
  const object = asObject(record.value, where);
  const question = stringField(object, "question", where);
  const finalAnswer = stringField(object, "final_answer", where).trim();
  const multihop = object["multihop"] ?? true;
  if (typeof multihop !== "boolean") {
    throw new InputError(
      fieldLocation(where, "multihop"),
      `expected true or false, found ${describe(multihop)}`,
    );
  }
  const subs = asArray(object["sub_questions"], where, "sub_questions").map((value, i) => {
    const subWhere = recordWhere(record, `sub_questions[${i}]`);
    const sub = asObject(value, subWhere);
    return {
      question: stringField(sub, "question", subWhere),
      paragraph: stringField(sub, "paragraph", subWhere),
      longAnswer: multihop ? stringField(sub, "long_answer", subWhere).trim() : "",
    };
  });
  if (subs.length === 0) {
    throw new InputError(fieldLocation(where, "sub_questions"), "needs at least one sub-question");
  }
  const messages: ChatMessage[] = [
    { role: "system", content: QA_EXPERT_SYSTEM },
    { role: "user", content: question },
  ];
  const context = (paragraph: string): ChatMessage => ({
    role: "user",
    content: `retrieved context: ${paragraph}`,
  });
  if (multihop) {
    let previous: string | null = null;
    for (const sub of subs) {
      const call = retrieveCall(sub.question);
      messages.push({
        role: "assistant",
        content: previous === null ? call : `${previous}\n${call}`,
      });
      messages.push(context(sub.paragraph));
      previous = sub.longAnswer;
    }
    messages.push({ role: "assistant", content: `${previous}\n${finalAnswer}` });
  } else {
    messages.push({ role: "assistant", content: retrieveCall(question) });
    messages.push(context(subs[0]!.paragraph));
    messages.push({ role: "assistant", content: finalAnswer });
  }
  const id = object["id"] === undefined
    ? `#${index}`
    : stringField(object, "id", where, { numberAllowed: true, nonEmpty: true });
  return { id, messages };
}

const SPEAKERS: Record<string, ChatMessage["role"]> = {
  system: "system",
  human: "user",
  user: "user",
  gpt: "assistant",
  assistant: "assistant",
};

/** One ShareGPT `conversations` record (RankLLM's training file) as a chat. */
export function conversationsToSft(record: LocatedRecord, index: number): SftRecord {
  const where = recordWhere(record);
  const object = asObject(record.value, where);
  const turns = asArray(object["conversations"], where, "conversations");
  const messages = turns.map((value, i): ChatMessage => {
    const turnWhere = recordWhere(record, `conversations[${i}]`);
    const turn = asObject(value, turnWhere);
    const from = stringField(turn, "from", turnWhere);
    const role = SPEAKERS[from];
    if (role === undefined) {
      throw new InputError(
        fieldLocation(turnWhere, "from"),
        `expected "system", "human" or "gpt", found ${describe(from)}`,
      );
    }
    return { role, content: stringField(turn, "value", turnWhere) };
  });
  if (messages.at(-1)?.role !== "assistant" || !messages.some((m) => m.role === "user")) {
    throw new InputError(
      fieldLocation(where, "conversations"),
      "expected a human turn and, last, the gpt turn (the target ranking)",
    );
  }
  const id = object["id"] === undefined
    ? `#${index}`
    : stringField(object, "id", where, { numberAllowed: true, nonEmpty: true });
  return { id, messages };
}
