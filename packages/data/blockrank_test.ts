import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BlockRankDataset,
  blockRankMistralPrompt,
  rankingExamplesFromCandidates,
} from "./blockrank.ts";
import type { RankingExample } from "./blockrank_jsonl.ts";
import { CharTokenizer, HashWordTokenizer } from "./tokenizer.ts";
import { attentionAllowed, collate, IGNORE_INDEX, TokenKind } from "./sequence.ts";
import { readCandidates } from "./candidates.ts";
import { readQrels } from "./trec.ts";
import { sharedPathOrSkip } from "./shared_data.ts";

const tok = new CharTokenizer();
const shortPrompt = {
  userPrefix: "<u>",
  userSuffix: "</u>",
  instruction: "Rank.",
  closing: "Go.",
  answerPrefix: "A: ",
};
const example: RankingExample = {
  queryId: "q1",
  query: "cats",
  documents: [
    { id: "a", title: "", text: "about dogs" },
    { id: "b", title: "Cats", text: "about cats" },
    { id: "c", title: "", text: "x".repeat(300) },
    { id: "d", title: "", text: "more cats" },
    { id: "e", title: "", text: "fish" },
  ],
  answerIds: ["b", "d"],
};

Deno.test("BlockRank layout: blocks, padding, positions, labels, metadata", () => {
  const dataset = new BlockRankDataset([example], tok, {
    numDocuments: 5,
    maxBlockLength: 96,
    seed: 1,
    prompt: shortPrompt,
  });
  const item = dataset.get(0, 0);
  const n = item.documentIds.length;
  assert.equal(n, 5);
  // positives always kept
  assert.ok(item.documentIds.includes("b") && item.documentIds.includes("d"));
  assert.deepEqual(
    item.positives,
    item.documentIds.flatMap((id, i) => (id === "b" || id === "d" ? [i] : [])),
  );
  assert.equal(item.blockRanges.length, n + 2);
  let cursor = 0;
  for (const [start, length] of item.blockRanges) {
    assert.equal(start, cursor);
    assert.equal(length % 16, 0);
    cursor += length;
  }
  assert.equal(cursor, item.inputIds.length);
  // block 0 text and left padding
  const [s0, l0] = item.blockRanges[0]!;
  const block0 = tok.decode(item.inputIds.slice(s0, s0 + l0));
  assert.equal(block0.replace(/^(<pad>)*/, ""), "<s><u>Rank.\nQuery: cats\n\nDocuments:");
  const real0 = item.segment.slice(s0, s0 + l0).filter((s) => s === 0).length;
  // document blocks: text, kind, positions starting right after block 0
  item.documentSpans.forEach(([start, end], i) => {
    const text = tok.decode(item.inputIds.slice(start, end));
    assert.ok(text.startsWith(`\nID: ${i} | CONTENT: `), text);
    assert.ok(text.endsWith(` | END ID: ${i}`), text);
    assert.ok(end - start <= 96);
    assert.deepEqual(
      item.position.slice(start, end),
      [...Array(end - start).keys()].map((k) => real0 + k),
    );
    assert.ok(item.kind.slice(start, end).every((k) => k === TokenKind.local));
    assert.ok(item.block.slice(start, end).every((b) => b === i + 1));
  });
  // the long document was truncated inside its content, keeping END ID
  const longIndex = item.documentIds.indexOf("c");
  const [ls, le] = item.documentSpans[longIndex]!;
  assert.equal(le - ls, 96);
  // last block: global, offset positions, answer labels
  const [sl, ll] = item.blockRanges[n + 1]!;
  const lastReal = item.segment.slice(sl, sl + ll).findIndex((s) => s === 0) + sl;
  assert.equal(item.position[lastReal], 16384);
  assert.ok(item.kind.slice(lastReal, sl + ll).every((k) => k === TokenKind.global));
  const labelled = item.labels.flatMap((l, i) => (l === IGNORE_INDEX ? [] : [i]));
  assert.equal(labelled[0], item.answerIndex);
  assert.equal(item.beforeAnswerIndex, item.answerIndex - 1);
  assert.equal(
    tok.decode(labelled.map((i) => item.labels[i]!)),
    `[${item.positives.join(", ")}]</s>`,
  );
  assert.equal(tok.decode([item.inputIds[item.answerIndex]!]), "[");
  assert.equal(tok.decode([item.inputIds[item.beforeAnswerIndex]!]), " ");
  assert.ok(
    tok.decode(item.inputIds.slice(lastReal)).startsWith("Go.\nQuery: cats\nThe following"),
  );
  assert.ok(tok.decode(item.inputIds).includes("</u>A: ["));
  // pads
  item.segment.forEach((s, i) => {
    if (s < 0) {
      assert.equal(item.inputIds[i], tok.padId);
      assert.equal(item.labels[i], IGNORE_INDEX);
      assert.equal(item.position[i], 0);
    }
  });
});

Deno.test("BlockRank attention: documents see block 0 and themselves; the query block sees all", () => {
  const item = new BlockRankDataset([example], tok, {
    numDocuments: 3,
    maxBlockLength: 96,
    seed: 3,
    prompt: shortPrompt,
  }).get(0);
  const batch = collate([item], { padId: 0 });
  const [d0s, d0e] = item.documentSpans[0]!;
  const [d1s] = item.documentSpans[1]!;
  const firstReal = item.segment.indexOf(0);
  assert.ok(attentionAllowed(batch, 0, d1s, firstReal)); // doc → instruction
  assert.ok(!attentionAllowed(batch, 0, d1s, d0e - 1)); // doc 1 ↛ doc 0
  assert.ok(attentionAllowed(batch, 0, d0e - 1, d0s)); // causal inside a doc
  assert.ok(!attentionAllowed(batch, 0, d0s, d0e - 1)); // not the future
  assert.ok(attentionAllowed(batch, 0, item.answerIndex, d0s)); // query block → doc
  assert.ok(attentionAllowed(batch, 0, item.answerIndex, d1s));
});

Deno.test("BlockRank sampling is deterministic per (seed, epoch, index) and pads with dummies", () => {
  const options = { numDocuments: 7, maxBlockLength: 400, seed: 9, prompt: shortPrompt };
  const a = new BlockRankDataset([example], tok, options);
  assert.deepEqual(a.get(0, 2), a.get(0, 2));
  const orders = new Set([0, 1, 2, 3, 4, 5].map((e) => a.get(0, e).documentIds.join()));
  assert.ok(orders.size > 1, "epochs reshuffle");
  const item = a.get(0, 0);
  assert.equal(item.documentIds.filter((id) => id.startsWith("dummy_")).length, 2);
  const uniform = new BlockRankDataset([example], tok, { ...options, uniformBlocks: true }).get(
    0,
    0,
  );
  assert.equal(new Set(uniform.blockRanges.map(([, l]) => l)).size, 1);
  const evalItem = new BlockRankDataset([example], tok, {
    ...options,
    mode: "eval",
    numDocuments: 3,
  }).get(0);
  assert.deepEqual(evalItem.documentIds, ["a", "b", "c"]);
  assert.ok(evalItem.labels.every((l) => l === IGNORE_INDEX));
  assert.equal(evalItem.answerIndex, evalItem.inputIds.length - 1);
  assert.equal(tok.decode([evalItem.inputIds[evalItem.answerIndex]!]), "[");
  assert.throws(
    () => new BlockRankDataset([example], tok, { ...options, maxBlockLength: 10 }).get(0),
    /block 0: its fixed text needs/,
  );
  assert.equal(blockRankMistralPrompt.answerPrefix, "Final Answer: ");
});

Deno.test("BlockRank on TREC DL19 BM25 candidates", async () => {
  const dir = sharedPathOrSkip("BlockRank on DL19", "data", "trec-dl19");
  if (!dir) return;
  const lists = await readCandidates(join(dir, "retrieve_results_dl19.json"));
  const qrels = await readQrels(join(dir, "qrels.dl19-passage.txt"));
  const { examples, unanswered } = rankingExamplesFromCandidates(lists, qrels, 2);
  assert.equal(examples.length + unanswered.length, 43);
  const dataset = new BlockRankDataset(examples, new HashWordTokenizer(), {
    numDocuments: 20,
    maxBlockLength: 160,
  });
  for (let i = 0; i < dataset.length; i++) {
    const item = dataset.get(i);
    assert.equal(item.documentIds.length, 20);
    assert.ok(item.positives.length >= 1);
    for (const p of item.positives) {
      assert.ok((qrels.get(examples[i]!.queryId)!.get(item.documentIds[p]!) ?? 0) >= 2);
    }
    assert.ok(item.blockRanges.every(([, l]) => l % 16 === 0 && l <= 160));
  }
});
