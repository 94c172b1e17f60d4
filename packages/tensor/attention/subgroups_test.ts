import assert from "node:assert/strict";
import { currentDevice } from "../device.ts";
import { setRowSubgroupsForTesting } from "../ops/row_reduce_wgsl.ts";
import { attentionBackward } from "./attention_backward.ts";
import { attentionForward } from "./attention_forward.ts";
import { AttentionMask } from "./attention_mask.ts";
import { ATTENTION_FORWARD, ATTENTION_ROW_SCORES, ATTENTION_ROW_STATS } from "./kernels.ts";
import { blockRankMask } from "./mask_metadata.ts";
import {
  referenceAttentionBackward,
  referenceAttentionForward,
  referenceRowScores,
  referenceRowScoresBackward,
} from "./reference.ts";
import { attentionRowScores, attentionRowScoresBackward } from "./row_scores.ts";
import { attentionSubgroups, butterfly, flatRowLanes } from "./subgroups.ts";
import {
  readBack,
  readBackF16,
  relativeError,
  seededRandom,
  testDevice,
  toF16,
  toF32,
  upload,
  uploadF16,
} from "./test_support.ts";
import { type AttentionTiling, kernelLayout } from "./tiling.ts";

const device = await testDevice();
const subgroups = device !== undefined && currentDevice().subgroups;
if (!device) console.log("subgroups_test: no WebGPU adapter, GPU tests skipped");
else if (!subgroups) {
  console.log(
    "subgroups_test: the adapter has no subgroups (Deno's WebGPU never does; run with " +
      "IRFORGE_WEBGPU=dawn on Mesa 25's lavapipe): only the workgroup-memory path is tested here",
  );
}

function gpuTest(name: string, fn: () => void | Promise<void>, needsSubgroups = false) {
  Deno.test({
    name,
    ignore: !device || (needsSubgroups && !subgroups),
    fn,
    sanitizeResources: false,
    sanitizeOps: false,
  });
}

// threadsPerRow 4: the forward's butterflies take two steps (and 8×8 tiles, RM 2: 8 threads).
const tiling: AttentionTiling = { queryTile: 8, keyTile: 8, threadsPerRow: 4, rowsPerThread: 2 };

// threadsPerRow 8: three butterfly steps, on the subgroup path only where subgroups have ≥ 8 lanes.
const wideTiling: AttentionTiling = {
  queryTile: 8,
  keyTile: 8,
  threadsPerRow: 8,
  rowsPerThread: 1,
};

/** Forward, backward and row scores (f32, and f16 operands when the adapter has them). */
async function checkAll(f16: boolean, tiling: AttentionTiling) {
  const heads = 4, kvHeads = 2, headDim = 16, t = 27;
  const meta = blockRankMask({
    length: t,
    rows: [
      { instruction: 3, documents: [5, 7, 4], query: 5 },
      { instruction: 2, documents: [6, 3, 5], query: 4, leftPad: 5 },
    ],
  });
  const batch = 2;
  const qn = batch * heads * t * headDim, kn = batch * kvHeads * t * headDim;
  const round = f16 ? toF16 : toF32;
  const data = {
    q: round(seededRandom(21, qn).map((x) => 2 * x)),
    k: round(seededRandom(22, kn).map((x) => 2 * x)),
    v: round(seededRandom(23, kn)),
    dOut: toF32(seededRandom(24, qn)),
  };
  const put = (x: Float64Array) => f16 ? uploadF16(device!, x) : upload(device!, x);
  const mask = new AttentionMask(meta);
  const shape = { heads, kvHeads, headDim, dtype: f16 ? "f16" : "f32" } as const;
  const inputs = { q: put(data.q), k: put(data.k), v: put(data.v) };
  const forward = attentionForward({ ...shape, ...inputs, mask, tiling });
  const backward = attentionBackward({
    ...shape,
    ...inputs,
    out: forward.out,
    lse: forward.lse,
    dOut: upload(device!, data.dOut),
    mask,
    tiling,
  });
  const rows = [[20, 22, 26], [21, 23, -1]];
  const { scores } = attentionRowScores({ ...shape, q: inputs.q, k: inputs.k, mask, rows });
  const grad = (b: GPUBuffer, n: number) => f16 ? readBackF16(b, n) : readBack(device!, b);
  const ref = referenceAttentionForward({ ...shape, ...data, meta });
  const refGrad = referenceAttentionBackward({ ...shape, ...data, meta });
  const rowInputs = { ...shape, q: data.q, k: data.k, meta, rows: rows.flat(), rowsPerBatch: 3 };
  const refScores = referenceRowScores(rowInputs);
  // Row-score backward (dQ: a sum over keys, split across lanes on the subgroup path).
  const dScores = toF32(seededRandom(25, refScores.length));
  const rowGrads = attentionRowScoresBackward({
    ...shape,
    q: inputs.q,
    k: inputs.k,
    mask,
    rows,
    dScores: upload(device!, dScores),
  });
  const refRowGrads = referenceRowScoresBackward({ ...rowInputs, dScores });
  // f32 results (out, lse, scores) of f16 inputs are exact up to f32 arithmetic; stored
  // gradients are rounded once to f16 (see attention_f16_test.ts).
  const gradTol = f16 ? 1e-3 : 1e-4;
  const checks: [string, ArrayLike<number>, ArrayLike<number>, number][] = [
    ["out", await readBack(device!, forward.out), ref.out, 1e-4],
    ["lse", await readBack(device!, forward.lse), ref.lse, 1e-4],
    ["dQ", await grad(backward.dQ, qn), refGrad.dQ, gradTol],
    ["dK", await grad(backward.dK, kn), refGrad.dK, gradTol],
    ["dV", await grad(backward.dV, kn), refGrad.dV, gradTol],
    ["scores", await readBack(device!, scores), refScores, 1e-4],
    ["row-scores dQ", await grad(rowGrads.dQ, qn), refRowGrads.dQ, gradTol],
    ["row-scores dK", await grad(rowGrads.dK, kn), refRowGrads.dK, gradTol],
  ];
  for (const [name, actual, expected, tol] of checks) {
    const error = relativeError(actual, expected);
    assert.ok(error < tol, `${name}: relative error ${error} ≥ ${tol}`);
  }
  mask.destroy();
}

gpuTest("workgroup-memory row reductions (the fallback) match the float64 reference", async () => {
  setRowSubgroupsForTesting(false);
  try {
    const layout = kernelLayout("forward", 16, tiling);
    assert.equal(attentionSubgroups(layout.threads, layout.threadsPerRow), false);
    assert.equal(flatRowLanes(), 1);
    await checkAll(false, tiling);
    if (currentDevice().hasF16) await checkAll(true, tiling);
  } finally {
    setRowSubgroupsForTesting(undefined);
  }
});

gpuTest("subgroup row reductions match the float64 reference", async () => {
  const layout = kernelLayout("forward", 16, tiling);
  // This test's shapes fit the subgroup path on any adapter with subgroups of ≥ 4 lanes.
  assert.equal(attentionSubgroups(layout.threads, layout.threadsPerRow), true);
  assert.ok(flatRowLanes() > 1);
  await checkAll(false, tiling);
  if (currentDevice().hasF16) await checkAll(true, tiling);
  // Eight threads per row take the subgroup path only with ≥ 8 lanes (lavapipe: 8 at its
  // default 256-bit vectors, 4 at LP_NATIVE_VECTOR_WIDTH=128; CI runs this file at both).
  const wide = kernelLayout("forward", 16, wideTiling);
  const eightLanes = currentDevice().subgroupMinSize >= 8;
  assert.equal(attentionSubgroups(wide.threads, wide.threadsPerRow), eightLanes);
  if (!eightLanes) {
    console.log("subgroups_test: subgroups under 8 lanes; threadsPerRow 8 falls back");
  }
  await checkAll(false, wideTiling);
}, true);

gpuTest("the subgroup path needs whole subgroups and groups that fit one", () => {
  const { subgroupMinSize: min, subgroupMaxSize: max } = currentDevice();
  if (!subgroups) {
    assert.equal(attentionSubgroups(64, 4), false);
    return;
  }
  assert.equal(attentionSubgroups(max, min), true);
  assert.equal(attentionSubgroups(max, 2 * min), false, "a group larger than a subgroup");
  assert.equal(attentionSubgroups(max, 3), false, "lanes not a power of two");
  if (max > 1) {
    assert.equal(attentionSubgroups(max + 1, 1), false, "threads not a multiple of a subgroup");
  }
});

Deno.test("pipeline keys name the storage types and the reduction path", () => {
  const spec = { headDim: 16, tiling };
  const keys = new Set([
    ATTENTION_FORWARD.key(spec),
    ATTENTION_FORWARD.key({ ...spec, subgroups: true }),
    ATTENTION_FORWARD.key({ ...spec, types: { operand: "f16", output: "f32" } }),
    ATTENTION_FORWARD.key({ ...spec, types: { operand: "f16", output: "f16" } }),
  ]);
  assert.equal(keys.size, 4);
  assert.notEqual(
    ATTENTION_ROW_STATS.key({ headDim: 16 }),
    ATTENTION_ROW_STATS.key({ headDim: 16, lanes: 8 }),
  );
  assert.notEqual(
    ATTENTION_ROW_SCORES.key({ headDim: 16 }),
    ATTENTION_ROW_SCORES.key({ headDim: 16, element: "f16" }),
  );
  // f32 keys are what they were before the variants existed (no stale pipelines to confuse).
  assert.equal(ATTENTION_FORWARD.key(spec), "d16 8x8 t4 r2");
});

Deno.test("butterfly: log2(lanes) xor-shuffle steps, none for one lane", () => {
  assert.equal(butterfly("sum", "x", 1), "");
  assert.equal(
    butterfly("max", "m", 4),
    "m = max(m, subgroupShuffleXor(m, 1u)); m = max(m, subgroupShuffleXor(m, 2u));",
  );
});
