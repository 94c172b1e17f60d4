import assert from "node:assert/strict";
import { gpuTest } from "@irforge/tensor/testing";
import { concat } from "@irforge/tensor";
import { createLoss } from "./mod.ts";
import {
  refBlockRankAux,
  refCosine,
  refCrossEntropy,
  refInfoNCE,
  refMSE,
  refPrefix,
  refScores,
} from "./reference.ts";
import { checkLoss, randomValues } from "./test_support.ts";

const N = 3, d = 4;

gpuTest("mse and cosine: student gradients; teacher as tensor or host numbers", async () => {
  const teacher = randomValues(N * d, 2);
  await checkLoss({
    loss: createLoss("mse"),
    params: [{ data: randomValues(N * d, 1), shape: [N, d] }],
    inputs: ([s]) => ({ student: s, teacher }),
    ref: ([s]) => refMSE(s!, teacher),
  });
  await checkLoss({
    loss: createLoss("cosine"),
    params: [{ data: randomValues(N * d, 1), shape: [N, d] }, { data: teacher, shape: [N, d] }],
    inputs: ([s, t]) => ({ student: s, teacher: t }),
    ref: ([s, t]) => refCosine(s!, t!, d),
  });
});

gpuTest("distill_phase1 = w·MSE + w′·(1 − cos), parts reported", async () => {
  const teacher = randomValues(N * d, 4);
  const r = await checkLoss({
    loss: createLoss("distill_phase1", { mse_weight: 0.5, cosine_weight: 2 }),
    params: [{ data: randomValues(N * d, 3), shape: [N, d] }],
    inputs: ([s]) => ({ student: s, teacher }),
    ref: ([s]) => 0.5 * refMSE(s!, teacher) + 2 * refCosine(s!, teacher, d),
  });
  assert.deepEqual(Object.keys(r.parts).sort(), ["cosine", "mse"]);
  assert(Math.abs(r.value - (0.5 * r.parts.mse! + 2 * r.parts.cosine!)) < 1e-5);
});

gpuTest(
  "distill_phase2 = w·InfoNCE + w′·(MSE(queries) + MSE(passages))/2, as Phase2Loss",
  async () => {
    const G = 2, teacher = randomValues(N * (1 + G) * d, 7);
    const tq = teacher.slice(0, N * d), tp = teacher.slice(N * d);
    const halves = (q: Float64Array, p: Float64Array) => (refMSE(q, tq) + refMSE(p, tp)) / 2;
    const pooled = (q: Float64Array, p: Float64Array) => refMSE([...q, ...p], teacher);
    const qData = randomValues(N * d, 5), pData = randomValues(N * G * d, 6);
    const f32 = (x: ArrayLike<number>) => Float64Array.from(Float32Array.from(x));
    const r = await checkLoss({
      loss: createLoss("distill_phase2", { infonce_weight: 1, mse_weight: 3, temperature: 0.5 }),
      params: [
        { data: qData, shape: [N, d] },
        { data: pData, shape: [N * G, d] },
      ],
      inputs: ([q, p]) => ({
        queryEmbeddings: q,
        passageEmbeddings: p,
        student: concat([q!, p!], 0),
        teacher,
      }),
      ref: ([q, p]) => refInfoNCE(refScores(q!, p!, d, false), N, 0.5, true) + 3 * halves(q!, p!),
    });
    // Control: the MSE over all rows at once (3 query rows, 6 passage rows) differs.
    const want = halves(f32(qData), f32(pData)), old = pooled(f32(qData), f32(pData));
    assert.ok(Math.abs(r.parts.mse! - want) < 1e-5, `mse part ${r.parts.mse} vs ${want}`);
    assert.ok(Math.abs(want - old) > 1e-3, `control: pooled MSE ${old} vs halves ${want}`);
    await assert.rejects(
      createLoss("distill_phase2").compute({
        queryEmbeddings: undefined,
      }),
      /needs input "queryEmbeddings"/,
    );
  },
);

gpuTest("matryoshka: infonce at prefix dims, renormalised per prefix, weighted", async () => {
  const G = 2, D = 6, dims = [2, 4, 6], weights = [1, 0.5, 0.25];
  const r = await checkLoss({
    loss: createLoss("matryoshka", {
      loss: "infonce",
      loss_options: { normalize: true, temperature: 0.1 },
      dims,
      weights,
    }),
    params: [
      { data: randomValues(N * D, 8), shape: [N, D] },
      { data: randomValues(N * G * D, 9), shape: [N * G, D] },
    ],
    inputs: ([q, p]) => ({ queryEmbeddings: q, passageEmbeddings: p }),
    ref: ([q, p]) =>
      dims.reduce(
        (acc, k, i) =>
          acc +
          weights[i]! *
            refInfoNCE(refScores(refPrefix(q!, D, k), refPrefix(p!, D, k), k, true), N, 0.1, true),
        0,
      ),
  });
  assert.deepEqual(Object.keys(r.parts), ["dim_2", "dim_4", "dim_6"]);
  await assert.rejects(
    createLoss("matryoshka", { loss: "mse", dims: [8] }).compute({ student: undefined }),
    /needs embedding inputs/,
  );
});

gpuTest("combined {lm: 1, blockrank_aux: 0.1}: total and parts", async () => {
  const V = 5, targets = [1, -100, 4, 0];
  const shape: [number, number, number, number] = [1, 2, 2, 6];
  const spans = [[[0, 2], [2, 4], [4, 6]] as [number, number][]], positives = [[2]];
  const r = await checkLoss({
    loss: createLoss("combined", {
      weights: { lm: 1, blockrank_aux: 0.1 },
      losses: { blockrank_aux: { temperature: 0.2 } },
    }),
    params: [
      { data: randomValues(4 * V, 10), shape: [4, V] },
      { data: randomValues(24, 11), shape },
    ],
    inputs: ([logits, s]) => ({
      logits,
      targets,
      attentionScores: s,
      documentSpans: spans,
      positives,
    }),
    ref: ([l, s]) =>
      refCrossEntropy(l!, targets, V) +
      0.1 * refBlockRankAux(s!, shape, spans, positives, 0.2).loss,
  });
  assert(Math.abs(r.parts.lm! + 0.1 * r.parts.blockrank_aux! - r.value) < 1e-5);
  assert.equal(typeof r.metrics["blockrank_aux/attention_accuracy"], "number");
  assert.equal(r.metrics["lm/tokens"], 3);
});
