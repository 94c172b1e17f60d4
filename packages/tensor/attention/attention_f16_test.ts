import assert from "node:assert/strict";
import { currentDevice } from "../device.ts";
import { attentionBackward } from "./attention_backward.ts";
import { attentionForward } from "./attention_forward.ts";
import { AttentionMask } from "./attention_mask.ts";
import { blockRankMask, causalMask, type MaskMetadata } from "./mask_metadata.ts";
import {
  referenceAttentionBackward,
  referenceAttentionForward,
  referenceRowScores,
  referenceRowScoresBackward,
} from "./reference.ts";
import { attentionRowScores, attentionRowScoresBackward } from "./row_scores.ts";
import {
  readBack,
  readBackF16,
  relativeError,
  seededRandom,
  testDevice,
  toF16,
  upload,
  uploadF16,
} from "./test_support.ts";
import type { AttentionTiling } from "./tiling.ts";
import type { AttentionElement } from "./wgsl_blocks.ts";

const device = await testDevice();
const hasF16 = device !== undefined && currentDevice().hasF16;
if (!device) console.log("attention_f16_test: no WebGPU adapter, GPU tests skipped");
else if (!hasF16) console.log("attention_f16_test: the adapter lacks shader-f16, tests skipped");

/**
 * The inputs are f16 values, so an f32 result is exact up to f32 arithmetic
 * (the f32 tolerance); a result stored as f16 is additionally rounded once,
 * up to 2⁻¹¹ ≈ 4.9e-4 of its magnitude, and f16 out and dO feed
 * Δ = rowsum(dO⊙O) with that rounding: 1e-3 of the largest reference
 * magnitude covers both (lavapipe measured at most 4.4e-4).
 */
const F32_RESULT_TOL = 1e-4;
const F16_RESULT_TOL = 1e-3;

function gpuTest(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, ignore: !hasF16, fn, sanitizeResources: false, sanitizeOps: false });
}

interface Case {
  meta: MaskMetadata;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Storage of out and dOut (q, k, v and the gradients are f16). */
  outDtype: AttentionElement;
  tiling?: AttentionTiling;
  keySplits?: number;
  seed?: number;
}

const uploadAs = (values: Float64Array, element: AttentionElement) =>
  element === "f16" ? uploadF16(device!, values) : upload(device!, values);
const readAs = (buffer: GPUBuffer, count: number, element: AttentionElement) =>
  element === "f16" ? readBackF16(buffer, count) : readBack(device!, buffer);

/** Forward and backward with f16 q, k, v against the float64 reference on the rounded inputs. */
async function check(c: Case) {
  const { batch, length } = c.meta;
  const seed = c.seed ?? 1;
  const qn = batch * c.heads * length * c.headDim, kn = batch * c.kvHeads * length * c.headDim;
  // Scaled up so the scores spread over several units and the softmax is not flat.
  const data = {
    q: toF16(seededRandom(seed, qn).map((x) => 2 * x)),
    k: toF16(seededRandom(seed + 1, kn).map((x) => 2 * x)),
    v: toF16(seededRandom(seed + 2, kn)),
    dOut: toF16(seededRandom(seed + 3, qn)),
  };
  const mask = new AttentionMask(c.meta);
  const shape = { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim };
  const inputs = {
    q: uploadF16(device!, data.q),
    k: uploadF16(device!, data.k),
    v: uploadF16(device!, data.v),
  };
  const types = { dtype: "f16", outDtype: c.outDtype } as const;
  const forward = attentionForward({ ...shape, ...inputs, ...types, mask, tiling: c.tiling });
  const dOut = uploadAs(data.dOut, c.outDtype);
  const backward = attentionBackward({
    ...shape,
    ...inputs,
    ...types,
    out: forward.out,
    lse: forward.lse,
    dOut,
    mask,
    tiling: c.tiling,
    keySplits: c.keySplits,
  });
  const got = {
    out: await readAs(forward.out, qn, c.outDtype),
    lse: await readBack(device!, forward.lse),
    dQ: await readBackF16(backward.dQ, qn),
    dK: await readBackF16(backward.dK, kn),
    dV: await readBackF16(backward.dV, kn),
  };
  const ref = referenceAttentionForward({ ...shape, ...data, meta: c.meta });
  const grads = referenceAttentionBackward({ ...shape, ...data, meta: c.meta });
  const outTol = c.outDtype === "f16" ? F16_RESULT_TOL : F32_RESULT_TOL;
  const checks: [string, ArrayLike<number>, ArrayLike<number>, number][] = [
    ["out", got.out, ref.out, outTol],
    ["lse", got.lse, ref.lse, F32_RESULT_TOL],
    ["dQ", got.dQ, grads.dQ, F16_RESULT_TOL],
    ["dK", got.dK, grads.dK, F16_RESULT_TOL],
    ["dV", got.dV, grads.dV, F16_RESULT_TOL],
  ];
  for (const [name, actual, expected, tol] of checks) {
    const error = relativeError(actual, expected);
    assert.ok(error < tol, `${name}: relative error ${error} ≥ ${tol}`);
  }
  for (
    const b of [
      ...Object.values(inputs),
      dOut,
      forward.out,
      forward.lse,
      backward.dQ,
      backward.dK,
      backward.dV,
    ]
  ) b.destroy();
  mask.destroy();
  return got;
}

gpuTest("f16 q, k, v: causal, head_dim 64, default tilings (f32 out, f16 gradients)", async () => {
  await check({
    meta: causalMask({ batch: 1, length: 21 }),
    heads: 2,
    kvHeads: 2,
    headDim: 64,
    outDtype: "f32",
  });
});

gpuTest("f16 q, k, v, out and dO: left and right padding, GQA 2; pad rows exactly 0", async () => {
  const t = 13, d = 16;
  const left = Array.from({ length: t }, (_, n) => n < 4 ? 0 : 1);
  const right = Array.from({ length: t }, (_, n) => n < 9 ? 1 : 0);
  const got = await check({
    meta: causalMask({ batch: 2, length: t, attentionMask: [left, right] }),
    heads: 4,
    kvHeads: 2,
    headDim: d,
    outDtype: "f16",
    tiling: { queryTile: 8, keyTile: 4, threadsPerRow: 4 },
  });
  for (let h = 0; h < 4; h++) {
    for (let c = 0; c < d; c++) {
      assert.equal(got.out[(h * t + 0) * d + c], 0);
      assert.equal(got.dQ[((4 + h) * t + 12) * d + c], 0);
    }
  }
});

gpuTest("f16: BlockRank block mask, GQA 4, split dK/dV (3 splits) and tile skipping", async () => {
  await check({
    meta: blockRankMask({
      length: 34,
      rows: [
        { instruction: 4, documents: [9, 6, 7], query: 8 },
        { instruction: 3, documents: [4, 8, 3], query: 5, leftPad: 6 },
      ],
    }),
    heads: 4,
    kvHeads: 1,
    headDim: 16,
    outDtype: "f32",
    tiling: { queryTile: 8, keyTile: 8, threadsPerRow: 4 },
    keySplits: 3,
  });
});

gpuTest("f16: odd head_dim 13 (scalar f16 rows), causal, GQA 2, f16 out", async () => {
  await check({
    meta: causalMask({ batch: 1, length: 19 }),
    heads: 2,
    kvHeads: 1,
    headDim: 13,
    outDtype: "f16",
    seed: 5,
  });
});

gpuTest("f16 row scores and their backward match the reference (BlockRank, GQA 2)", async () => {
  const heads = 4, kvHeads = 2, headDim = 20, t = 26, batch = 1;
  const meta = blockRankMask({
    length: t,
    rows: [{ instruction: 4, documents: [5, 6, 4], query: 7 }],
  });
  const rows = [[20, 22, -1, 25]];
  const q = toF16(seededRandom(11, batch * heads * t * headDim));
  const k = toF16(seededRandom(12, batch * kvHeads * t * headDim));
  const mask = new AttentionMask(meta);
  const qBuffer = uploadF16(device!, q), kBuffer = uploadF16(device!, k);
  const shape = { heads, kvHeads, headDim, dtype: "f16" } as const;
  const { scores } = attentionRowScores({ ...shape, q: qBuffer, k: kBuffer, mask, rows });
  const got = await readBack(device!, scores);
  const refInputs = { heads, kvHeads, headDim, q, k, meta, rows: rows.flat(), rowsPerBatch: 4 };
  const expected = referenceRowScores(refInputs);
  // Scores are f32 products of f16 values: f32 accuracy.
  assert.ok(relativeError(got, expected) < F32_RESULT_TOL);
  assert.deepEqual([...got].map((s) => s === -Infinity), [...expected].map((s) => s === -Infinity));
  const dScores = seededRandom(13, expected.length).map((g, n) =>
    Number.isFinite(expected[n]!) ? g : 0
  );
  const grads = attentionRowScoresBackward({
    ...shape,
    q: qBuffer,
    k: kBuffer,
    mask,
    rows,
    dScores: upload(device!, dScores),
  });
  const ref = referenceRowScoresBackward({
    ...refInputs,
    dScores: Float64Array.from(Float32Array.from(dScores)),
  });
  assert.ok(relativeError(await readBackF16(grads.dQ, q.length), ref.dQ) < F16_RESULT_TOL);
  assert.ok(relativeError(await readBackF16(grads.dK, k.length), ref.dK) < F16_RESULT_TOL);
  mask.destroy();
});
