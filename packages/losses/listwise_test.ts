import assert from "node:assert/strict";
import { gpuTest } from "@irforge/tensor/testing";
import { createLoss } from "./mod.ts";
import {
  refBCE,
  refKL,
  refLambdaLoss,
  refListNet,
  refMarginMSE,
  refRankNet,
  refScores,
} from "./reference.ts";
import { checkLoss, randomValues } from "./test_support.ts";

const N = 2, L = 5;
// Graded labels with ties (two 1s in list 0, two 0s in list 1).
const labels = [2, 1, 0, 1, 3, 0, 2, 0, 1, 3];
// Last entry of list 0 and first of list 1 are padding.
const mask = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1];

/** Random scores with −inf at padded positions (must not leak NaN). */
function paddedScores(seed: number): Float64Array {
  const s = randomValues(N * L, seed);
  mask.forEach((m, i) => (m ? 0 : (s[i] = -Infinity)));
  return s;
}

gpuTest("kl: group-only, in-batch (Trove block-diagonal labels), mask, alias kl_div", async () => {
  const Q = 2, K = 3, klLabels = [2, 0.5, 0, 1, 1, 0];
  await checkLoss({
    loss: createLoss("kl", { temperature: 0.5 }),
    params: [{ data: randomValues(Q * K, 1), shape: [Q, K] }],
    inputs: ([s]) => ({ scores: s, labels: klLabels }),
    ref: ([s]) => refKL(s!, klLabels, Q, 0.5),
  });
  await checkLoss({
    loss: createLoss("kl_div", { temperature: 0.5 }),
    params: [{ data: randomValues(Q * Q * K, 2), shape: [Q, Q * K] }],
    inputs: ([s]) => ({ scores: s, labels: klLabels }),
    ref: ([s]) => refKL(s!, klLabels, Q, 0.5),
  });
  const klMask = [1, 1, 0, 1, 1, 1];
  await checkLoss({
    loss: createLoss("kl"),
    params: [{ data: randomValues(Q * Q * K, 3), shape: [Q, Q * K] }],
    inputs: ([s]) => ({ scores: s, labels: klLabels, mask: klMask }),
    ref: ([s]) => refKL(s!, klLabels, Q, 1, klMask),
  });
  const d = 4;
  await checkLoss({
    loss: createLoss("kl", { normalize: true, temperature: 0.1 }),
    params: [
      { data: randomValues(Q * d, 4), shape: [Q, d] },
      { data: randomValues(Q * K * d, 5), shape: [Q * K, d] },
    ],
    inputs: ([q, p]) => ({ queryEmbeddings: q, passageEmbeddings: p, labels: klLabels }),
    ref: ([q, p]) => refKL(refScores(q!, p!, d, true), klLabels, Q, 0.1),
  });
});

gpuTest("kl: identical distributions give 0; label/score shape mismatch names both", async () => {
  const r = await checkLoss({
    loss: createLoss("kl"),
    params: [{ data: [1, 2, 3, 0, 0, 0], shape: [2, 3] }],
    inputs: ([s]) => ({ scores: s, labels: [1, 2, 3, 0, 0, 0] }),
    ref: ([s]) => refKL(s!, [1, 2, 3, 0, 0, 0], 2, 1),
    atol: 1e-6,
    grad: false,
  });
  assert(r.grads[0]!.every((g) => Math.abs(g) < 1e-6), "zero gradient at the optimum");
  await assert.rejects(
    checkLoss({
      loss: createLoss("kl"),
      params: [{ data: randomValues(8, 1), shape: [2, 4] }],
      inputs: ([s]) => ({ scores: s, labels: [1, 2, 3, 0, 0, 0] }),
      ref: () => 0,
    }),
    /scores have 4 columns; labels give 3 per query/,
  );
});

gpuTest("listnet: ties, padded −inf scores, all-equal scores", async () => {
  await checkLoss({
    loss: createLoss("listnet"),
    params: [{ data: paddedScores(7), shape: [N, L] }],
    inputs: ([s]) => ({ scores: s, labels, mask }),
    ref: ([s]) => refListNet(s!, labels, N, mask),
  });
  const r = await checkLoss({
    loss: createLoss("listnet"),
    params: [{ data: new Float64Array(N * L).fill(0.3), shape: [N, L] }],
    inputs: ([s]) => ({ scores: s, labels }),
    ref: ([s]) => refListNet(s!, labels, N),
  });
  assert(Math.abs(r.value - Math.log(L)) < 1e-5, "uniform prediction: loss = log L");
  assert(r.grads[0]!.some((g) => g !== 0));
});

for (const weighted of [false, true]) {
  gpuTest(`ranknet: weighted=${weighted}, ties and padding excluded`, async () => {
    const r = await checkLoss({
      loss: createLoss("ranknet", { weighted }),
      params: [{ data: paddedScores(8), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels, mask }),
      ref: ([s]) => refRankNet(s!, labels, N, weighted, mask),
    });
    assert.equal(r.grads[0]![4], 0, "padded entry gets no gradient");
    assert.equal(r.grads[0]![5], 0, "padded entry gets no gradient");
  });
}

gpuTest(
  "ranknet: all-equal scores (loss log 2, exact gradient at s_i = s_j); no pairs → 0",
  async () => {
    const r = await checkLoss({
      loss: createLoss("ranknet"),
      params: [{ data: new Float64Array(N * L).fill(1), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels }),
      ref: ([s]) => refRankNet(s!, labels, N, false),
    });
    assert(Math.abs(r.value - Math.LN2) < 1e-6);
    const none = await checkLoss({
      loss: createLoss("ranknet"),
      params: [{ data: randomValues(N * L, 9), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels: new Array(N * L).fill(1) }),
      ref: () => 0,
    });
    assert.equal(none.value, 0);
  },
);

for (
  const options of [
    {},
    { k: 3 },
    { reduction: "mean" as const, sigma: 2 },
  ]
) {
  gpuTest(`lambdarank ${JSON.stringify(options)}: vs allRank lambdaLoss(ndcgLoss2)`, async () => {
    await checkLoss({
      loss: createLoss("lambdarank", options),
      params: [{ data: randomValues(N * L, 10), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels }),
      ref: ([s]) => refLambdaLoss(s!, labels, N, options),
    });
    await checkLoss({
      loss: createLoss("lambdarank", options),
      params: [{ data: paddedScores(11), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels, mask }),
      ref: ([s]) => refLambdaLoss(s!, labels, N, options, mask),
    });
  });
}

gpuTest("lambdarank: all-equal scores, eps clamps at huge score gaps", async () => {
  // Equal scores: ties keep list order (value only: the ranking is discontinuous here).
  await checkLoss({
    loss: createLoss("lambdarank"),
    params: [{ data: new Float64Array(N * L).fill(0.5), shape: [N, L] }],
    inputs: ([s]) => ({ scores: s, labels }),
    ref: ([s]) => refLambdaLoss(s!, labels, N, {}),
    grad: false,
  });
  // Scores reversed against labels by 40 per step: σ(−40·n) < eps, clamped (zero gradient).
  const reversed = labels.map((t) => -40 * t);
  const r = await checkLoss({
    loss: createLoss("lambdarank"),
    params: [{ data: reversed, shape: [N, L] }],
    inputs: ([s]) => ({ scores: s, labels }),
    ref: ([s]) => refLambdaLoss(s!, labels, N, {}),
  });
  assert(r.value > 0);
});

gpuTest("margin_mse: student margins vs teacher margins (one and several negatives)", async () => {
  for (const width of [2, 4]) {
    const teacher = randomValues(3 * width, 12, 3);
    await checkLoss({
      loss: createLoss("margin_mse"),
      params: [{ data: randomValues(3 * width, 13), shape: [3, width] }],
      inputs: ([s]) => ({ scores: s, labels: teacher }),
      ref: ([s]) => refMarginMSE(s!, teacher, 3),
    });
  }
});

gpuTest(
  "binary_cross_entropy: soft labels, padding with −inf, large logits stay finite",
  async () => {
    const y = [1, 0, 0.25, 1, 0, 0, 1, 0.5, 0, 1];
    await checkLoss({
      loss: createLoss("bce"),
      params: [{ data: paddedScores(14), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels: y, mask }),
      ref: ([s]) => refBCE(s!, y, mask),
    });
    await checkLoss({
      loss: createLoss("binary_cross_entropy"),
      params: [{ data: randomValues(N * L, 15, 60), shape: [N, L] }],
      inputs: ([s]) => ({ scores: s, labels: y }),
      ref: ([s]) => refBCE(s!, y),
    });
  },
);
