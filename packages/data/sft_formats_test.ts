import assert from "node:assert/strict";
import {
  conversationsToSft,
  isConversationsRecord,
  isQaExpertRecord,
  QA_EXPERT_SYSTEM,
  qaExpertToSft,
  retrieveCall,
} from "./sft_formats.ts";

const located = (value: unknown) => ({ value, file: "train.json", path: "[0]" });

Deno.test("qaExpertToSft: multi-hop record → qa-expert's retrieval dialogue", () => {
  const record = {
    question: "Where was the owner born?",
    answer: "Paris",
    multihop: true,
    sub_questions: [
      { question: "Who owns it?", answer: "Ann", paragraph: "Ann owns it.", long_answer: " Ann. " },
      {
        question: "Where was Ann born?",
        answer: "Paris",
        paragraph: "In Paris.",
        long_answer: "Paris.",
      },
    ],
    final_answer: " Answer: Paris ",
  };
  assert.ok(isQaExpertRecord(record));
  assert.deepEqual(qaExpertToSft(located(record), 0), {
    id: "#0",
    messages: [
      { role: "system", content: QA_EXPERT_SYSTEM },
      { role: "user", content: "Where was the owner born?" },
      { role: "assistant", content: '<|bof|>retrieve:\n{"query": "Who owns it?"}<|eof|>' },
      { role: "user", content: "retrieved context: Ann owns it." },
      {
        role: "assistant",
        content: 'Ann.\n<|bof|>retrieve:\n{"query": "Where was Ann born?"}<|eof|>',
      },
      { role: "user", content: "retrieved context: In Paris." },
      { role: "assistant", content: "Paris.\nAnswer: Paris" },
    ],
  });
});

Deno.test("qaExpertToSft: single-hop record retrieves the question itself", () => {
  const record = {
    question: "Q?",
    multihop: false,
    sub_questions: [{ question: "Q?", answer: "A", paragraph: "P." }],
    final_answer: "A",
  };
  const { messages } = qaExpertToSft(located(record), 3);
  assert.deepEqual(messages.slice(2), [
    { role: "assistant", content: retrieveCall("Q?") },
    { role: "user", content: "retrieved context: P." },
    { role: "assistant", content: "A" },
  ]);
  assert.equal(retrieveCall('say "hi"'), '<|bof|>retrieve:\n{"query": "say \\"hi\\""}<|eof|>');
});

Deno.test("qaExpertToSft / conversationsToSft: bad records name the field", () => {
  assert.throws(
    () => qaExpertToSft(located({ question: "q", sub_questions: [], final_answer: "a" }), 0),
    /train\.json.*sub_questions.*at least one/,
  );
  assert.throws(
    () =>
      conversationsToSft(
        located({ conversations: [{ from: "robot", value: "x" }] }),
        0,
      ),
    /conversations\[0\]\.from.*expected "system", "human" or "gpt"/,
  );
});

Deno.test("conversationsToSft: RankLLM's ShareGPT record → system, user, assistant", () => {
  const record = {
    id: "q1",
    conversations: [
      { from: "system", value: "S" },
      { from: "human", value: "H" },
      { from: "gpt", value: "[2] > [1]" },
    ],
  };
  assert.ok(isConversationsRecord(record));
  assert.deepEqual(conversationsToSft(located(record), 0), {
    id: "q1",
    messages: [
      { role: "system", content: "S" },
      { role: "user", content: "H" },
      { role: "assistant", content: "[2] > [1]" },
    ],
  });
});
