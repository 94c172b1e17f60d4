import assert from "node:assert/strict";
import { gpuTest } from "@irforge/tensor/testing";
import { createLoss } from "./mod.ts";
import { refBlockRankAux, refCrossEntropy } from "./reference.ts";
import { checkLoss, randomValues } from "./test_support.ts";

const shape: [number, number, number, number] = [2, 2, 2, 14];
const [B, H, R, T] = shape;
// Item 0: instruction 0..2, three documents, query 11..14. Item 1: two documents.
const spans = [
  [[2, 5], [5, 8], [8, 11]],
  [[1, 6], [6, 9]],
] as const;
const positives = [[1], [0, 1]];

function scores(seed: number, scale = 2): Float64Array {
  const s = randomValues(B * H * R * T, seed, scale);
  // Causal/padding masks: some document tokens and prompt tokens are −inf.
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < R; r++) {
      const base = ((0 * H + h) * R + r) * T;
      s[base + 4] = -Infinity; // inside document 0 of item 0
      s[base + 12] = -Infinity; // query block of item 0
    }
  }
  return s;
}

gpuTest("blockrank_aux: loss, gradient and top-1 accuracy vs reference, −inf masks", async () => {
  for (const temperature of [0.05, 0.5]) {
    const ref = (s: Float64Array) => refBlockRankAux(s, shape, spans, positives, temperature);
    const data = scores(1);
    const r = await checkLoss({
      loss: createLoss("blockrank_aux", { temperature }),
      params: [{ data, shape }],
      inputs: ([s]) => ({ attentionScores: s, documentSpans: spans, positives }),
      ref: ([s]) => ref(s!).loss,
    });
    assert.equal(
      r.metrics.attention_accuracy,
      ref(Float64Array.from(Float32Array.from(data))).accuracy,
    );
    // Tokens outside documents and masked tokens get exactly zero gradient.
    for (let h = 0; h < H; h++) {
      for (let rr = 0; rr < R; rr++) {
        const base = ((0 * H + h) * R + rr) * T;
        for (const t of [0, 1, 4, 11, 12, 13]) assert.equal(r.grads[0]![base + t], 0);
      }
    }
  }
});

gpuTest(
  "blockrank_aux: temperature 1e-3 finite; all-equal scores; accuracy picks first max",
  async () => {
    await checkLoss({
      loss: createLoss("blockrank_aux", { temperature: 1e-3 }),
      params: [{ data: scores(2, 4), shape }],
      inputs: ([s]) => ({ attentionScores: s, documentSpans: spans, positives }),
      ref: ([s]) => refBlockRankAux(s!, shape, spans, positives, 1e-3).loss,
      grad: false,
    });
    // Equal scores: doc score ∝ its token count; item 1's docs are both positive → loss 0 there.
    const r = await checkLoss({
      loss: createLoss("blockrank_aux"),
      params: [{ data: new Float64Array(B * H * R * T), shape }],
      inputs: ([s]) => ({ attentionScores: s, documentSpans: spans, positives }),
      ref: ([s]) => refBlockRankAux(s!, shape, spans, positives, 0.05).loss,
    });
    // Item 0: all docs have 3 tokens, argmax is doc 0 (first), not positive; item 1: doc 0 positive.
    assert.equal(r.metrics.attention_accuracy, 0.5);
  },
);

gpuTest("blockrank_aux: bad inputs name the item", async () => {
  const loss = createLoss("blockrank_aux");
  const run = (documentSpans: typeof spans | number[][][], pos: number[][]) =>
    checkLoss({
      loss,
      params: [{ data: scores(3), shape }],
      inputs: ([s]) => ({
        attentionScores: s,
        documentSpans: documentSpans as [number, number][][],
        positives: pos,
      }),
      ref: () => 0,
    });
  await assert.rejects(run(spans, [[1], []]), /item 1 \(query 1\) has no positive/);
  await assert.rejects(run(spans, [[3], [0]]), /positives\[0\] has 3/);
  await assert.rejects(
    run([[[2, 6], [5, 8]], [[1, 6]]], [[0], [0]]),
    /documentSpans\[0\]\[1\] overlaps/,
  );
  await assert.rejects(
    run([[[2, 20]], [[1, 6]]], [[0], [0]]),
    /documentSpans\[0\]\[0\] = \[2, 20\)/,
  );
});

gpuTest(
  "lm: token cross-entropy with −100 ignored, [B, T, V] logits, alias cross_entropy",
  async () => {
    const V = 7, targets = [3, -100, 0, 6, -100, 2];
    const r = await checkLoss({
      loss: createLoss("cross_entropy"),
      params: [{ data: randomValues(6 * V, 4, 2), shape: [2, 3, V] }],
      inputs: ([l]) => ({ logits: l, targets }),
      ref: ([l]) => refCrossEntropy(l!, targets, V),
    });
    assert.equal(r.metrics.tokens, 4);
    await assert.rejects(
      checkLoss({
        loss: createLoss("lm"),
        params: [{ data: randomValues(6 * V, 4), shape: [6, V] }],
        inputs: ([l]) => ({ logits: l, targets: [1, 2, 3, 7, 0, 0] }),
        ref: () => 0,
      }),
      /targets\[3\] = 7 is outside \[0, 7\)/,
    );
  },
);
