import assert from "node:assert/strict";
import { createLoss, type LossInputs, rankLlmRankingLoss } from "@irforge/losses";
import { Tensor } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import type { Config } from "../config/schema.ts";
import { listwiseLosses } from "./listwise.ts";
import { combinedListwiseOptions, rankLlmCombinedLoss } from "./listwise_combined.ts";

Deno.test("combinedListwiseOptions: lm_weight/ranking_weight weigh the parts, the rest configures the ranking loss", () => {
  assert.deepEqual(combinedListwiseOptions("listnet", {}), {
    weights: { lm: 1, listnet: 1 },
    losses: {},
  });
  const first = combinedListwiseOptions("ranknet", { ranking_weight: 10, weighted: true });
  assert.deepEqual(first, {
    weights: { lm: 1, ranknet: 10 },
    losses: { ranknet: { weighted: true } },
  });
  // The combined loss accepts them (an unknown ranknet option would be refused by name).
  assert.equal(createLoss("combined", first).name, "combined");
  assert.throws(
    () => createLoss("combined", combinedListwiseOptions("ranknet", { weigthed: true })),
    /weigthed/,
  );
  assert.throws(
    () => combinedListwiseOptions("listnet", { lm_weight: "x" }),
    /training\.loss_options\.lm_weight: expected a number ≥ 0, got x/,
  );
});

/** One list of three identifier logits, permutation [C] > [B] > [A] (grades), and LM logits. */
function inputs(): LossInputs {
  return {
    scores: Tensor.fromArray(Float32Array.from([0.2, 1.5, -0.3]), [1, 3]),
    labels: [1, 2, 3],
    logits: Tensor.fromArray(Float32Array.from([0.1, -0.4, 0.9, 0.3, 1.2, 0.0, -0.5, 0.7]), [2, 4]),
    targets: [2, -100],
  };
}

async function valueOf(loss: { compute(i: LossInputs): Promise<{ loss: Tensor }> }) {
  const out = await loss.compute(inputs());
  return await out.loss.item();
}

gpuTest(
  "conversations file: ranking and combined train RankLLM's ranking loss (own scores permuted), not grades",
  async () => {
    const listnet = await valueOf(rankLlmRankingLoss("listnet"));
    const onGrades = await valueOf(createLoss("listnet"));
    assert.ok(Math.abs(listnet - onGrades) > 1e-2, `${listnet} vs grades ${onGrades}`);
    const lm = await valueOf(createLoss("lm"));
    // rank_llm's combined weight for listnet: 0.1.
    const combined = await rankLlmCombinedLoss("listnet", { ranking_weight: 0.1 }).compute(
      inputs(),
    );
    assert.ok(Math.abs((await combined.loss.item()) - (lm + 0.1 * listnet)) < 1e-5);
    assert.ok(Math.abs((await combined.parts!.listnet!.item()) - listnet) < 1e-6);
    assert.ok(Math.abs((await combined.parts!.lm!.item()) - lm) < 1e-6);
    // The recipe picks it for the conversations file only.
    const config = (objective: string) =>
      ({
        training: { objective, loss: "lambdarank", loss_options: { reduction: "mean" } },
      }) as unknown as Config;
    const upstream = await valueOf(rankLlmRankingLoss("lambdarank", { reduction: "mean" }));
    const grades = await valueOf(createLoss("lambdarank", { reduction: "mean" }));
    assert.ok(Math.abs(upstream - grades) > 1e-2, `${upstream} vs grades ${grades}`);
    const ranking = listwiseLosses(config("ranking"), { conversations: true });
    assert.ok(Math.abs((await valueOf(ranking.loss)) - upstream) < 1e-6);
    assert.ok(Math.abs((await valueOf(listwiseLosses(config("ranking")).loss)) - grades) < 1e-6);
    const both = await listwiseLosses(config("combined"), { conversations: true }).loss
      .compute(inputs());
    assert.ok(Math.abs((await both.parts!.lambdarank!.item()) - upstream) < 1e-6);
    assert.throws(
      () =>
        listwiseLosses(
          { training: { objective: "ranking", loss: "kl", loss_options: {} } } as unknown as Config,
          { conversations: true },
        ),
      /upstream's --ranking_loss lambda, listnet, ranknet\), not "kl"/,
    );
  },
);
