import assert from "node:assert/strict";
import { gpuTest } from "@irforge/tensor/testing";
import { createLoss } from "./mod.ts";
import { refInfoNCE, refScores } from "./reference.ts";
import { checkLoss, randomValues } from "./test_support.ts";

const Q = 3, G = 3, d = 4;

for (const inBatch of [true, false]) {
  for (const normalize of [false, true]) {
    gpuTest(`infonce: in_batch_negatives=${inBatch} normalize=${normalize}`, async () => {
      const temperature = normalize ? 0.05 : 0.7;
      await checkLoss({
        loss: createLoss("infonce", {
          temperature,
          normalize,
          in_batch_negatives: inBatch,
        }),
        params: [
          { data: randomValues(Q * d, 1), shape: [Q, d] },
          { data: randomValues(Q * G * d, 2), shape: [Q * G, d] },
        ],
        inputs: ([q, p]) => ({ queryEmbeddings: q, passageEmbeddings: p }),
        ref: ([q, p]) => refInfoNCE(refScores(q!, p!, d, normalize), Q, temperature, inBatch),
      });
    });
  }
}

gpuTest(
  "infonce: several positives from labels, scores given directly, alias info_nce",
  async () => {
    const labels = [1, 1, 0, 0, 2, 0, 1, 0, 1];
    await checkLoss({
      loss: createLoss("info_nce", { temperature: 0.5 }),
      params: [{ data: randomValues(Q * Q * G, 3), shape: [Q, Q * G] }],
      inputs: ([s]) => ({ scores: s, labels }),
      ref: ([s]) => refInfoNCE(s!, Q, 0.5, true, labels),
    });
  },
);

gpuTest("infonce: temperature 1e-3 with cosine scores stays finite and exact", async () => {
  const r = await checkLoss({
    loss: createLoss("infonce", { temperature: 1e-3, normalize: true }),
    params: [
      { data: randomValues(Q * d, 4), shape: [Q, d] },
      { data: randomValues(Q * G * d, 5), shape: [Q * G, d] },
    ],
    inputs: ([q, p]) => ({ queryEmbeddings: q, passageEmbeddings: p }),
    ref: ([q, p]) => refInfoNCE(refScores(q!, p!, d, true), Q, 1e-3, true),
    grad: false,
  });
  assert(r.value > 1, `a sharp softmax on random data gives a large loss, got ${r.value}`);
});

gpuTest("infonce: group size 1 and all-equal scores (loss = log Q)", async () => {
  const r = await checkLoss({
    loss: createLoss("contrastive", { temperature: 1 }),
    params: [{ data: new Float64Array(Q * Q).fill(0.25), shape: [Q, Q] }],
    inputs: ([s]) => ({ scores: s }),
    ref: ([s]) => refInfoNCE(s!, Q, 1, true),
  });
  assert(Math.abs(r.value - Math.log(Q)) < 1e-6);
});

gpuTest("infonce: a query without positive is an error naming it", async () => {
  const labels = [1, 0, 0, 0, 0, 0, 0, 1, 0];
  await assert.rejects(
    checkLoss({
      loss: createLoss("infonce"),
      params: [{ data: randomValues(Q * Q * G, 6), shape: [Q, Q * G] }],
      inputs: ([s]) => ({ scores: s, labels }),
      ref: () => 0,
    }),
    /query 1 has no positive/,
  );
});
