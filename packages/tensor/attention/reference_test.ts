import assert from "node:assert/strict";
import { blockRankMask, causalMask, packedMask } from "./mask_metadata.ts";
import {
  referenceAttentionBackward,
  referenceAttentionForward,
  referenceRowScores,
  referenceRowScoresBackward,
} from "./reference.ts";
import { seededRandom } from "./test_support.ts";

const shape = { heads: 4, kvHeads: 2, headDim: 3 };

Deno.test("reference forward: zero queries average the visible values; pads are zero", () => {
  const meta = packedMask({ length: 5, segmentLengths: [[2, 2]] });
  const t = 5, d = 3;
  const q = new Float64Array(4 * t * d);
  const k = seededRandom(1, 2 * t * d);
  const v = seededRandom(2, 2 * t * d);
  const { out, lse } = referenceAttentionForward({ ...shape, q, k, v, meta });
  // Query head 3 uses kv head 1; token 3 (second of segment 1) sees tokens 2 and 3.
  for (let c = 0; c < d; c++) {
    const mean = (v[(1 * t + 2) * d + c]! + v[(1 * t + 3) * d + c]!) / 2;
    assert.ok(Math.abs(out[(3 * t + 3) * d + c]! - mean) < 1e-15);
    assert.equal(out[(3 * t + 4) * d + c], 0); // pad token
  }
  assert.ok(Math.abs(lse[3 * t + 3]! - Math.log(2)) < 1e-15);
  assert.equal(lse[3 * t + 4], 0);
});

/** Central finite differences of `loss` with respect to each entry of `x`. */
function numericGradient(x: Float64Array, loss: () => number): Float64Array {
  const grad = new Float64Array(x.length);
  const h = 1e-6;
  for (let n = 0; n < x.length; n++) {
    const keep = x[n]!;
    x[n] = keep + h;
    const up = loss();
    x[n] = keep - h;
    const down = loss();
    x[n] = keep;
    grad[n] = (up - down) / (2 * h);
  }
  return grad;
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let n = 0; n < a.length; n++) m = Math.max(m, Math.abs(a[n]! - b[n]!));
  return m;
}

Deno.test("reference backward matches finite differences (BlockRank + window, GQA)", () => {
  const meta = blockRankMask({
    length: 9,
    rows: [{ instruction: 2, documents: [2, 1], query: 2, leftPad: 1 }],
    window: 6,
  });
  const t = 9, d = 3;
  const q = seededRandom(3, 4 * t * d),
    k = seededRandom(4, 2 * t * d),
    v = seededRandom(5, 2 * t * d);
  const dOut = seededRandom(6, 4 * t * d);
  const inputs = { ...shape, q, k, v, meta, scale: 0.7 };
  const loss = () => {
    const { out } = referenceAttentionForward(inputs);
    return out.reduce((sum, o, n) => sum + o * dOut[n]!, 0);
  };
  const analytic = referenceAttentionBackward({ ...inputs, dOut });
  assert.ok(maxAbsDiff(analytic.dQ, numericGradient(q, loss)) < 1e-8);
  assert.ok(maxAbsDiff(analytic.dK, numericGradient(k, loss)) < 1e-8);
  assert.ok(maxAbsDiff(analytic.dV, numericGradient(v, loss)) < 1e-8);
});

Deno.test("reference row scores and their backward match finite differences", () => {
  const meta = causalMask({ batch: 1, length: 6, attentionMask: [[0, 1, 1, 1, 1, 1]] });
  const t = 6, d = 3;
  const q = seededRandom(7, 4 * t * d), k = seededRandom(8, 2 * t * d);
  const rows = [5, 2, -1];
  const inputs = { ...shape, q, k, meta, rows, rowsPerBatch: 3 };
  const scores = referenceRowScores(inputs);
  assert.equal(scores[0 * t + 0], -Infinity); // pad key
  assert.equal(scores[1 * t + 3], -Infinity); // future key of row 2
  assert.equal(scores[2 * t + 0], -Infinity); // unused slot
  const dScores = seededRandom(9, scores.length).map((g, n) => Number.isFinite(scores[n]!) ? g : 0);
  const loss = () =>
    referenceRowScores(inputs).reduce((s, x, n) => Number.isFinite(x) ? s + x * dScores[n]! : s, 0);
  const analytic = referenceRowScoresBackward({ ...inputs, dScores });
  assert.ok(maxAbsDiff(analytic.dQ, numericGradient(q, loss)) < 1e-8);
  assert.ok(maxAbsDiff(analytic.dK, numericGradient(k, loss)) < 1e-8);
});
