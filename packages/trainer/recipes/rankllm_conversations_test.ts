import assert from "node:assert/strict";
import { join } from "node:path";
import { sharedPathOrSkip, type TextTokenizer } from "@irforge/data";
import { causalInputs, disposeInputs, loadTokenizer } from "@irforge/model";
import { getDevice, noGrad } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { parseConfig } from "../config/parse.ts";
import { Rng } from "../rng.ts";
import { listwiseTask } from "./listwise.ts";
import {
  conversationItems,
  letterIdentifierIds,
  permutationOf,
  readRankLlmConversations,
} from "./rankllm_conversations.ts";

const where = { file: "t.json", field: "[0].conversations[2].value" };

Deno.test("permutationOf: letters in order; a gap, a repeat or no letters is one sentence", () => {
  assert.deepEqual(permutationOf("[C] > [A] > [B]", where), [2, 0, 1]);
  assert.deepEqual(permutationOf("Ranking: [B] > [A]", where), [1, 0]);
  assert.throws(
    () => permutationOf("[2] > [1]", where),
    /t\.json \(field "\[0\]\.conversations\[2\]\.value"\): expected a ranking of letter identifiers/,
  );
  assert.throws(() => permutationOf("[A] > [C]", where), /names 2 identifiers but not \[B\]/);
  assert.throws(() => permutationOf("[A] > [B] > [A]", where), /appears twice/);
});

const stories = sharedPathOrSkip("the rankllm conversation tests", "data", "stories260K");

Deno.test({
  name:
    "conversationItems: grades n − rank; the score position is the token before the first identifier",
  ignore: !stories,
  async fn() {
    const sp = await loadTokenizer(stories!);
    const tokenizer: TextTokenizer = {
      encode: (t) => sp.encode(t),
      decode: (ids) => sp.decode(ids),
      bosId: sp.bosId ?? undefined,
      eosId: sp.eosId ?? undefined,
      padId: sp.padId ?? sp.eosId ?? 0,
    };
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "alpha.jsonl");
      const record = (gpt: string) =>
        JSON.stringify({
          conversations: [
            { from: "system", value: "Rank." },
            { from: "human", value: "[A] one [B] two [C] three [D] four" },
            { from: "gpt", value: gpt },
          ],
        });
      await Deno.writeTextFile(
        path,
        [record("[C] > [A] > [D] > [B]"), record("[B] > [A]")].join("\n"),
      );
      const records = (await readRankLlmConversations(path))!;
      assert.deepEqual(records.map((r) => r.ranking), [[2, 0, 3, 1], [1, 0]]);
      assert.deepEqual(records[1]!.where, { file: path, line: 2, field: "conversations[2].value" });
      const { items, identifierIds } = conversationItems(tokenizer, records, 1024);
      // Each letter's own token, as `[L]` encodes it (not the bare letter).
      assert.equal(identifierIds.length, 4);
      assert.equal(new Set(identifierIds).size, 4);
      assert.deepEqual(letterIdentifierIds(tokenizer, 2), identifierIds.slice(0, 2));
      assert.deepEqual(items[0]!.example.grades, [3, 1, 4, 2]);
      assert.deepEqual(items[1]!.example.grades, [1, 2]);
      items.forEach((item, i) => {
        const first = records[i]!.ranking[0]!;
        // The logits at scorePosition predict the next token: the first identifier.
        assert.equal(item.inputIds[item.scorePosition + 1], identifierIds[first]);
        assert.ok(item.scorePosition >= item.targetStart - 1);
        // Labels: the gpt turn (+EOS) only.
        assert.ok(item.labels.slice(0, item.targetStart).every((l) => l === -100));
      });
      // A rank_llm candidates file is not a conversations file.
      const candidates = join(dir, "candidates.json");
      await Deno.writeTextFile(
        candidates,
        JSON.stringify([{ query: { text: "q", qid: "1" }, candidates: [] }]),
      );
      assert.equal(await readRankLlmConversations(candidates), null);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Float64 softmax. */
function softmax(xs: readonly number[]): number[] {
  const m = Math.max(...xs), e = xs.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

if (stories) {
  gpuTest(
    "conversations file, objective ranking: the micro-batch loss is upstream's listNet on the model's own permuted logits",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const path = join(dir, "alpha.jsonl");
        const record = (human: string, gpt: string) =>
          JSON.stringify({
            conversations: [
              { from: "system", value: "Rank." },
              { from: "human", value: human },
              { from: "gpt", value: gpt },
            ],
          });
        // Two records of different lengths in one micro-batch (padding, mean over lists).
        await Deno.writeTextFile(
          path,
          [
            record("[A] one [B] two [C] three [D] four", "[C] > [A] > [D] > [B]"),
            record("[A] a cat [B] a dog", "[B] > [A]"),
          ].join("\n"),
        );
        const config = parseConfig(
          `recipe: listwise
model:
  model_name_or_path: ${stories}
  use_lora: false
data:
  data_path: ${path}
  max_seq_length: 1024
training:
  objective: ranking
  loss: listnet
  per_device_train_batch_size: 2
  save_strategy: "no"
`,
          "rankllm-ranking-test.yaml",
        );
        const task = await listwiseTask(config, { log: () => {} });
        try {
          let upstream = 0, onGrades = 0;
          for (const item of task.items) {
            const inputs = causalInputs([item.inputIds]);
            const full = noGrad(() => task.model.forward(inputs)).logits!;
            const all = await full.toArray();
            full.dispose();
            disposeInputs(inputs);
            const V = task.model.config.vocabSize, n = item.example.ranking.length;
            const s = task.identifierIds.slice(0, n).map((id) => all[item.scorePosition * V + id]!);
            // compute_ranking_loss: true_scores = gather(scores.sort(desc), true_rank).
            const sorted = [...s].sort((a, b) => b - a);
            const t = s.map((_, i) => sorted[item.example.ranking.indexOf(i)]!);
            const q = softmax(s);
            upstream -= softmax(t).reduce((acc, p, j) => acc + p * Math.log(q[j]! + 1e-10), 0);
            onGrades -= softmax(item.example.grades).reduce(
              (acc, p, j) => acc + p * Math.log(q[j]!),
              0,
            );
          }
          upstream /= task.items.length;
          onGrades /= task.items.length;
          const out = await task.microBatch(0, 0, Rng.seeded(1));
          const value = await out.loss.item();
          out.loss.dispose();
          assert.ok(Math.abs(value - upstream) < 1e-4, `listnet ${value} vs upstream ${upstream}`);
          assert.ok(Math.abs(upstream - onGrades) > 1e-2, `${upstream} vs grades ${onGrades}`);
        } finally {
          task.dispose();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
