import assert from "node:assert/strict";
import { join } from "node:path";
import { mistralChatTemplate, tokenizeChat } from "./chat.ts";
import { hotpotToSft, SftDataset } from "./sft.ts";
import {
  identifierOffset,
  identifierTokenIds,
  listwiseExamples,
  listwisePrompt,
  slidingWindows,
  tokenizeListwise,
} from "./listwise.ts";
import { EmbeddingDistillDataset, TripletDataset } from "./distill.ts";
import { materializeQrels } from "./qrel_source.ts";
import { CharTokenizer } from "./tokenizer.ts";
import { IGNORE_INDEX } from "./sequence.ts";
import { readHotpotQa } from "./hotpotqa.ts";
import { readCandidates } from "./candidates.ts";
import { readQrels } from "./trec.ts";
import { sharedPathOrSkip } from "./shared_data.ts";

const tok = new CharTokenizer();

Deno.test("tokenizeChat labels only assistant tokens and EOS", () => {
  const seq = tokenizeChat(tok, [
    { role: "system", content: "S" },
    { role: "user", content: "hi" },
    { role: "assistant", content: "yo" },
    { role: "user", content: "?" },
    { role: "assistant", content: "!" },
  ]);
  assert.equal(tok.decode(seq.inputIds), "<s>[INST] S\n\nhi [/INST]yo</s>[INST] ? [/INST]!</s>");
  const labelled = seq.labels.flatMap((l, i) => (l === IGNORE_INDEX ? [] : [i]));
  assert.equal(tok.decode(labelled.map((i) => seq.inputIds[i]!)), "yo</s>!</s>");
  labelled.forEach((i) => assert.equal(seq.labels[i], seq.inputIds[i]));
  const custom = tokenizeChat(tok, [{ role: "user", content: "a" }, {
    role: "assistant",
    content: "b",
  }], {
    template: {
      ...mistralChatTemplate,
      userPrefix: "<u>",
      userSuffix: "</u>",
      assistantPrefix: "<a>",
      bos: false,
    },
  });
  assert.equal(tok.decode(custom.inputIds), "<u>a</u><a>b</s>");
  assert.equal(custom.labels.filter((l) => l !== IGNORE_INDEX).length, 2);
});

Deno.test("HotpotQA → SFT: supporting context, question, answer as the only target", async () => {
  const file = sharedPathOrSkip(
    "HotpotQA SFT",
    "data",
    "hotpotqa-dev-100",
    "hotpot_dev_distractor_v1.json",
  );
  if (!file) return;
  const examples = await readHotpotQa(file);
  const record = hotpotToSft(examples[0]!);
  const user = record.messages[0]!.content;
  assert.ok(
    user.includes(
      "Context:\nScott Derrickson: Scott Derrickson (born July 16, 1966) is an American director",
    ),
  );
  assert.ok(user.includes("\nEd Wood: "));
  assert.ok(!user.includes("Tyler Bates"));
  assert.ok(user.endsWith("Question: Were Scott Derrickson and Ed Wood of the same nationality?"));
  const dataset = new SftDataset(examples.map((e) => hotpotToSft(e)), tok);
  const seq = dataset.get(0);
  assert.equal(tok.decode(seq.labels.filter((l) => l !== IGNORE_INDEX)), "yes</s>");
  assert.ok(
    hotpotToSft(examples[0]!, { context: "all" }).messages[0]!.content.includes("Tyler Bates"),
  );
});

Deno.test("sliding windows follow rank_llm (from the end, stride back)", () => {
  assert.deepEqual(slidingWindows(0, 100, 20, 10), [
    [80, 100],
    [70, 90],
    [60, 80],
    [50, 70],
    [40, 60],
    [30, 50],
    [20, 40],
    [10, 30],
    [0, 20],
  ]);
  assert.deepEqual(slidingWindows(0, 20, 20, 10), [[0, 20]]);
  assert.deepEqual(slidingWindows(0, 15, 20, 10), [[0, 15]]);
});

Deno.test("listwise targets: grade descending, ties by first-stage rank", () => {
  const list = {
    qid: "q",
    query: "what",
    hits: ["a", "b", "c", "d"].map((docid, i) => ({
      docid,
      content: `text ${docid}`,
      rank: i + 1,
      score: 0,
    })),
  };
  const qrels = new Map([["q", new Map([["b", 1], ["c", 2], ["d", 1]])]]);
  const [example] = listwiseExamples([list], qrels, { windowSize: 4 });
  assert.deepEqual(example!.ranking, [2, 1, 3, 0]);
  assert.equal(example!.messages[2]!.content, "[3] > [2] > [4] > [1]");
  assert.ok(
    example!.messages[1]!.content.startsWith(
      "I will provide you with 4 passages, each indicated by a numerical identifier [].",
    ),
  );
  assert.ok(example!.messages[1]!.content.includes("\n[2] text b\n"));
  assert.equal(listwisePrompt("q", ["x"]).split("\n")[2], "[1] x");
  const tokens = tokenizeListwise(tok, example!);
  assert.equal(tok.decode([tokens.inputIds[tokens.firstTargetIndex]!]), "[");
  assert.equal(tokens.scorePosition, tokens.firstTargetIndex);
  assert.equal(tok.decode([tokens.inputIds[tokens.scorePosition + 1]!]), "3");
  assert.equal(tok.decode([tokens.identifierTokenIds[2]!]), "3");
  assert.equal(
    tok.decode(tokens.labels.filter((l) => l !== IGNORE_INDEX)),
    "[3] > [2] > [4] > [1]</s>",
  );
});

/**
 * Characters with SentencePiece's dummy prefix: every `encode` starts with
 * `▁`, so a bare "3" encodes as `▁ 3` and "[3]" as `▁ [ 3 ]` (as Llama's does).
 */
class DummyPrefixTokenizer extends CharTokenizer {
  override encode(text: string): number[] {
    return super.encode(`\u2581${text}`);
  }
}

Deno.test("tokenizeListwise: identifiers in context under a dummy-prefix (SentencePiece-like) tokenizer", () => {
  const sp = new DummyPrefixTokenizer();
  assert.equal(identifierOffset(sp), 2);
  assert.equal(identifierOffset(tok), 1);
  assert.deepEqual(identifierTokenIds(sp, 3).map((id) => sp.decode([id])), ["1", "2", "3"]);
  const list = {
    qid: "q",
    query: "what",
    hits: ["a", "b", "c"].map((d, i) => ({
      docid: d,
      content: `text ${d}`,
      rank: i + 1,
      score: 0,
    })),
  };
  const qrels = new Map([["q", new Map([["c", 2], ["a", 1]])]]);
  const [example] = listwiseExamples([list], qrels, { windowSize: 3 });
  assert.deepEqual(example!.ranking, [2, 0, 1]);
  const tokens = tokenizeListwise(sp, example!);
  // The bare digit's first token would be "▁", the same for every identifier.
  assert.equal(new Set(tokens.identifierTokenIds).size, 3);
  assert.equal(sp.decode([tokens.identifierTokenIds[2]!]), "3");
  assert.equal(
    sp.decode(tokens.inputIds.slice(tokens.firstTargetIndex, tokens.scorePosition + 2)),
    "\u2581[3",
  );
  assert.equal(
    tokens.inputIds[tokens.scorePosition + 1],
    tokens.identifierTokenIds[example!.ranking[0]!],
  );
  // An answer truncated away is an error naming the query.
  assert.throws(
    () => tokenizeListwise(sp, example!, undefined, tokens.firstTargetIndex + 1),
    /query "q" window \[0, 3\)/,
  );
});

Deno.test("NovelEval listwise windows use the graded qrels", async () => {
  const dir = sharedPathOrSkip("NovelEval listwise", "data", "noveleval");
  if (!dir) return;
  const lists = await readCandidates(join(dir, "data.json"));
  const qrels = await readQrels(join(dir, "qrels.txt"));
  const examples = listwiseExamples(lists, qrels, { windowSize: 20, stride: 10 });
  assert.equal(examples.length, 21);
  for (const e of examples) {
    const sorted = e.ranking.map((i) => e.grades[i]!);
    assert.deepEqual(sorted, [...e.grades].sort((a, b) => b - a));
  }
});

Deno.test("distillation: teacher rows by index, shape errors, seeded triplets", () => {
  const teacher = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const ds = new EmbeddingDistillDataset(["ab", "c"], teacher, 3, tok, { maxLength: 8 });
  assert.deepEqual([...ds.get(1).target], [4, 5, 6]);
  assert.equal(tok.decode(ds.get(0).inputIds), "<s>ab</s>");
  assert.throws(
    () => new EmbeddingDistillDataset(["a"], teacher, 3, tok, { maxLength: 8 }),
    /expected 1 texts × 3 = 3/,
  );
  assert.throws(
    () => new EmbeddingDistillDataset(["a"], Float32Array.from([1, NaN]), 2, tok, { maxLength: 8 }),
    /non-finite/,
  );
  const corpus = new Map(["a", "b", "c"].map((id) => [id, { id, title: "", text: id }]));
  const queries = new Map([["q", "query"]]);
  const positives = materializeQrels([{
    qrels: new Map([["q", new Map([["a", 1]])]]),
    corpus,
    queries,
  }]);
  const triplets = new TripletDataset({ positives, randomCorpus: corpus, seed: 3 });
  const t = triplets.get(0, 1);
  assert.equal(t.positive.id, "a");
  assert.ok(["b", "c"].includes(t.negative.id));
  assert.deepEqual(triplets.get(0, 1), t);
});
