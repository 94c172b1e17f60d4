import assert from "node:assert/strict";
import { AttentionMask } from "./attention_mask.ts";
import { blockRankMask, causalMask } from "./mask_metadata.ts";
import { referenceRowScores, referenceRowScoresBackward } from "./reference.ts";
import { attentionRowScores, attentionRowScoresBackward, flattenRows } from "./row_scores.ts";
import {
  readBack,
  relativeError,
  seededRandom,
  testDevice,
  toF32,
  upload,
} from "./test_support.ts";

const device = await testDevice();
if (!device) console.log("row_scores_test: no WebGPU adapter, GPU tests skipped");

function gpuTest(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, ignore: !device, fn, sanitizeResources: false, sanitizeOps: false });
}

gpuTest("row scores and backward match the reference (BlockRank, GQA 2, head_dim 64)", async () => {
  const gpu = device!;
  const heads = 4, kvHeads = 2, headDim = 64, t = 30, batch = 2;
  const meta = blockRankMask({
    length: t,
    rows: [
      { instruction: 4, documents: [5, 3, 7], query: 4 },
      { instruction: 3, documents: [2, 9, 4], query: 3, leftPad: 2 },
    ],
  });
  const rows = [[19, 21, 22, -1], [29, 24, 25, 26]];
  const q = toF32(seededRandom(1, batch * heads * t * headDim));
  const k = toF32(seededRandom(2, batch * kvHeads * t * headDim));
  const mask = new AttentionMask(meta);
  const qBuffer = upload(gpu, q), kBuffer = upload(gpu, k);
  const shape = { heads, kvHeads, headDim };
  const { scores } = await attentionRowScores({
    ...shape,
    q: qBuffer,
    k: kBuffer,
    mask,
    rows,
  });
  const got = await readBack(gpu, scores);
  const refInputs = { ...shape, q, k, meta, rows: rows.flat(), rowsPerBatch: 4 };
  const expected = referenceRowScores(refInputs);
  assert.ok(relativeError(got, expected) < 1e-4);
  // Masked entries are exactly −∞ in the same places.
  assert.deepEqual(
    [...got].map((s) => s === -Infinity),
    [...expected].map((s) => s === -Infinity),
  );

  // Backward, accumulating into an existing dQ.
  const dScores = toF32(seededRandom(3, expected.length)).map((g, n) =>
    Number.isFinite(expected[n]!) ? g : 0
  );
  const dQStart = toF32(seededRandom(4, q.length));
  const dQ = upload(gpu, dQStart);
  const grads = await attentionRowScoresBackward({
    ...shape,
    q: qBuffer,
    k: kBuffer,
    mask,
    rows,
    dScores: upload(gpu, dScores),
    dQ,
  });
  const ref = referenceRowScoresBackward({ ...refInputs, dScores });
  const refDQ = ref.dQ.map((g, n) => g + dQStart[n]!);
  assert.ok(relativeError(await readBack(gpu, grads.dQ), refDQ) < 1e-4);
  assert.ok(relativeError(await readBack(gpu, grads.dK), ref.dK) < 1e-4);
  mask.destroy();
});

gpuTest("row-scores backward ignores dS at masked entries and is deterministic", async () => {
  const gpu = device!;
  const heads = 2, kvHeads = 1, headDim = 16, t = 9;
  const meta = causalMask({ batch: 1, length: t, attentionMask: [[0, 0, 1, 1, 1, 1, 1, 1, 1]] });
  const q = toF32(seededRandom(5, heads * t * headDim)), k = toF32(seededRandom(6, t * headDim));
  const rows = [[8, 4]];
  const dScores = toF32(seededRandom(7, heads * 2 * t)); // non-zero everywhere, masked too
  const mask = new AttentionMask(meta);
  const inputs = {
    heads,
    kvHeads,
    headDim,
    q: upload(gpu, q),
    k: upload(gpu, k),
    mask,
    rows,
    dScores: upload(gpu, dScores),
  };
  const a = await attentionRowScoresBackward(inputs);
  const b = await attentionRowScoresBackward(inputs);
  const ref = referenceRowScoresBackward({
    heads,
    kvHeads,
    headDim,
    q,
    k,
    meta,
    rows: rows.flat(),
    rowsPerBatch: 2,
    dScores,
  });
  const dK = await readBack(gpu, a.dK), dQ = await readBack(gpu, a.dQ);
  assert.ok(relativeError(dK, ref.dK) < 1e-4);
  assert.ok(relativeError(dQ, ref.dQ) < 1e-4);
  assert.deepEqual([...dK], [...await readBack(gpu, b.dK)]);
  assert.deepEqual([...dQ], [...await readBack(gpu, b.dQ)]);
  assert.ok(dK.subarray(0, 2 * headDim).every((g) => g === 0)); // pad keys
  mask.destroy();
});

Deno.test("flattenRows rejects duplicates, out-of-range rows and ragged lists", () => {
  assert.throws(() => flattenRows([[1, 1]], 1, 4), /lists token 1 twice/);
  assert.throws(() => flattenRows([[4]], 1, 4), /rows\[0\]\[0\] = 4/);
  assert.throws(() => flattenRows([[1], [1, 2]], 2, 4), /rows\[1\] has 2 entries/);
  assert.deepEqual([...flattenRows([[3, -1], [0, 2]], 2, 4).flat], [3, -1, 0, 2]);
});
