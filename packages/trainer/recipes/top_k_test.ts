import assert from "node:assert/strict";
import { getDevice, setBindingLimitForTesting } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { exactTopKCpu } from "@irforge/eval";
import { Rng } from "../rng.ts";
import { exactTopKGpu, mergeTopK } from "./top_k.ts";

/** Small integer entries: every dot product is exact in f32, so ties are real ties. */
function integerMatrix(rows: number, dim: number, rng: Rng, values = 3): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(2 * values + 1) - values;
  return out;
}

Deno.test("mergeTopK: score descending, ties by lower index, at most k", () => {
  const a = [{ index: 1, score: 5 }, { index: 4, score: 2 }];
  const b = [{ index: 0, score: 5 }, { index: 3, score: 2 }, { index: 2, score: 1 }];
  assert.deepEqual(mergeTopK(a, b, 4).map((s) => s.index), [0, 1, 3, 4]);
  assert.deepEqual(mergeTopK(a, [], 1).map((s) => s.index), [1]);
});

gpuTest("exactTopKGpu equals the CPU brute force, ties included, in one chunk", async () => {
  await getDevice();
  const rng = Rng.seeded(7);
  const Q = 9, N = 57, dim = 6;
  const queries = integerMatrix(Q, dim, rng, 1); // values −1..1: many equal scores
  const documents = integerMatrix(N, dim, rng, 1);
  for (const k of [1, 10, 57, 80]) {
    const expected = await exactTopKCpu(queries, Q, documents, N, dim, k);
    const actual = await exactTopKGpu(queries, Q, documents, N, dim, k);
    assert.deepEqual(actual, expected, `k = ${k}`);
  }
  const ties = (await exactTopKGpu(queries, Q, documents, N, dim, 57)).flat();
  const distinct = new Set(ties.map((s) => s.score)).size;
  assert.ok(distinct < ties.length / 4, "the test data should be full of ties");
});

gpuTest(
  "exactTopKGpu: document chunks and query blocks forced small by the binding limit",
  async () => {
    await getDevice();
    const rng = Rng.seeded(11);
    const Q = 13, N = 301, dim = 8;
    const queries = integerMatrix(Q, dim, rng);
    const documents = integerMatrix(N, dim, rng);
    const expected = await exactTopKCpu(queries, Q, documents, N, dim, 20);
    // 128-byte bindings: 4 rows of 8 floats per block, 32 scores per chunk → 76 chunks × 4 blocks.
    setBindingLimitForTesting(128);
    try {
      assert.deepEqual(await exactTopKGpu(queries, Q, documents, N, dim, 20), expected);
    } finally {
      setBindingLimitForTesting(undefined);
    }
    assert.deepEqual(
      await exactTopKGpu(queries, Q, documents, N, dim, 20, { maxScoresPerChunk: 50 }),
      expected,
    );
  },
);

gpuTest("exactTopKGpu: random float embeddings agree with float64 scores", async () => {
  await getDevice();
  const rng = Rng.seeded(3);
  const Q = 5, N = 200, dim = 16;
  const queries = Float32Array.from({ length: Q * dim }, () => rng.normal(0, 1));
  const documents = Float32Array.from({ length: N * dim }, () => rng.normal(0, 1));
  const expected = await exactTopKCpu(queries, Q, documents, N, dim, 10);
  const actual = await exactTopKGpu(queries, Q, documents, N, dim, 10, { maxScoresPerChunk: 64 });
  for (let q = 0; q < Q; q++) {
    assert.deepEqual(actual[q]!.map((s) => s.index), expected[q]!.map((s) => s.index));
    actual[q]!.forEach((s, i) => assert.ok(Math.abs(s.score - expected[q]![i]!.score) < 1e-4));
  }
  assert.deepEqual(await exactTopKGpu(new Float32Array(0), 0, documents, N, dim, 10), []);
  await assert.rejects(
    () => exactTopKGpu(queries, Q + 1, documents, N, dim, 10),
    /queries hold 80 values, expected 6 × 16/,
  );
});
