import assert from "node:assert/strict";
import { gpuTest, numericGrad, relativeError } from "@irforge/tensor/testing";
import { rankLlmRankingLoss } from "./mod.ts";
import { refRankLlmRanking } from "./reference.ts";
import { checkLoss } from "./test_support.ts";

const N = 3, L = 5;
// Hand-made identifier logits; list 2 has four identifiers (its last entry is padding, −inf).
const scores = [
  ...[0.3, -1.2, 2.1, 0.8, -0.4],
  ...[1.5, 0.2, -0.7, 3.0, 0.9],
  ...[-0.5, -2.0, 0.6, -1.1, -Infinity],
];
// Grades n − rank of the permutations [C] > [A] > [E] > [B] > [D], [E] > [C] > [B] > [A] > [D]
// and [B] > [D] > [A] > [C].
const labels = [4, 2, 5, 1, 3, 2, 3, 4, 1, 5, 2, 4, 1, 3, 0];
const mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];

const cases = [
  { name: "lambdarank", options: { reduction: "mean" } },
  { name: "lambdarank", options: { reduction: "sum", k: 3, sigma: 0.5 } },
  { name: "listnet", options: {} },
  { name: "ranknet", options: {} },
  { name: "ranknet", options: { weighted: true } },
] as const;

for (const { name, options } of cases) {
  gpuTest(
    `rankllm ${name} ${JSON.stringify(options)}: value and gradient as upstream`,
    async () => {
      const ref = (s: Float64Array, targetScores?: ArrayLike<number>) =>
        refRankLlmRanking(s, labels, N, name, options, mask, targetScores);
      const { grads } = await checkLoss({
        loss: rankLlmRankingLoss(name, options),
        params: [{ data: scores, shape: [N, L] }],
        inputs: ([s]) => ({ scores: s, labels, mask }),
        ref: ([s]) => ref(s!),
      });
      // Targets held at the current scores' values: the gradient through the targets is gone.
      const fixed = Float64Array.from(scores);
      const detached = numericGrad(([s]) => ref(s!, fixed), [Float64Array.from(scores)], 0, 1e-6);
      const gap = relativeError(grads[0]!, detached).relative;
      if (name === "ranknet") {
        assert(gap < 1e-3, `ranknet: no gradient flows through the targets (gap ${gap})`);
      } else {
        assert(gap > 1e-2, `${name}: the gradient through the targets is missing (gap ${gap})`);
      }
    },
  );
}

gpuTest(
  "rankllm ranking: ranks from labels equal grades; unknown loss and option named",
  async () => {
    // Ranks 0 = first written as labels −rank give the same permutation as grades n − rank.
    const ranks = labels.map((g, i) => (mask[i] ? g - 10 : 0));
    const loss = rankLlmRankingLoss("listnet");
    await checkLoss({
      loss,
      params: [{ data: scores, shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels: ranks, mask }),
      ref: ([s]) => refRankLlmRanking(s!, labels, N, "listnet", {}, mask),
      grad: false,
    });
    assert.throws(() => rankLlmRankingLoss("kl"), /lambdarank, listnet, ranknet.*not "kl"/);
    assert.throws(() => rankLlmRankingLoss("ranknet", { weigted: true }), /weighted/);
  },
);
