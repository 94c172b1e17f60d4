import assert from "node:assert/strict";
import { attentionCounts, type AttentionProblem } from "./counts.ts";
import { causalMask } from "./mask_metadata.ts";
import { buildTileTable } from "./tile_table.ts";
import { type AttentionTiling, chooseTiling, loopLoadsPerFma } from "./tiling.ts";

// B=1, Hq=2, Hkv=1, T=8, D=8, causal: 36 visible pairs; 4×4 tiles: 3 active tile pairs.
const tiling: AttentionTiling = { queryTile: 4, keyTile: 4, threadsPerRow: 2, rowsPerThread: 2 };
const problem: AttentionProblem = {
  batch: 1,
  heads: 2,
  kvHeads: 1,
  seqLen: 8,
  headDim: 8,
  visiblePairs: 36,
  activeTiles: 3,
};

Deno.test("the small causal problem has 3 active 4×4 tiles", () => {
  assert.equal(buildTileTable(causalMask({ batch: 1, length: 8 }), 4, 4).activeCount, 3);
});

Deno.test("forward counts of a small causal problem, by hand", () => {
  const { total, kernels } = attentionCounts("forward", problem, tiling);
  assert.equal(kernels.length, 1);
  // 4·D per pair and head.
  assert.equal(total.flops, 4 * 8 * 36 * 2);
  // q, k, v, out (floats 128 + 64 + 64 + 128) and lse (16), 4 bytes each.
  assert.equal(total.minBytes, 4 * 400);
  // Q 512 B; K and V 2·4·8·4 = 256 B per tile and head (6); key metadata 4·12 + entry 4 per
  // tile and head; 4 workgroups × (bounds 8 + 4 threads × 2 rows × 12).
  assert.equal(total.globalReadBytes, 512 + 6 * 256 + 6 * 52 + 4 * 104);
  assert.equal(total.globalWriteBytes, 512 + 64);
  // Score loop: 4 threads × 2 vec4 steps × (2 + 2) loads = 32 per 128 FMAs; P·V: 4 threads ×
  // 1 group of 4 keys × (2 + 4) loads = 24 per 4 × 16 × 2 = 128 FMAs.
  assert.equal(total.workgroupLoadsPerFma, (32 + 24) / 256);
  assert.equal(kernels[0]!.scoreLoadsPerFma, 0.25);
  assert.equal(kernels[0]!.executedFlops, 2 * 6 * 256);
  assert.equal(total.workgroups, 2 * 2);
  assert.equal(total.threadsPerWorkgroup, 4);
  // Row of 3 vec4 (D4 = 2 padded to odd): Q 4 rows, K 4, V 2·4 → 16 rows × 48 B; P 64 B,
  // partial row values 32 B, key metadata 64 B, bounds 16 B.
  assert.equal(total.workgroupBytes, 16 * 48 + 64 + 32 + 64 + 16);
});

Deno.test("backward counts with two dK/dV splits, by hand", () => {
  const { total, kernels } = attentionCounts("backward", problem, tiling, 2);
  assert.deepEqual(kernels.map((k) => k.kernel), [
    "attention-row-stats",
    "attention-dkdv",
    "attention-dkdv-split-sum",
    "attention-dq",
  ]);
  assert.equal(total.flops, 10 * 8 * 36 * 2);
  // Reads q, out, dOut (3 × 128), k, v (2 × 64), lse 16; writes dQ 128, dK and dV 2 × 64.
  assert.equal(total.minBytes, 4 * 528 + 4 * 256);
  const [stats, dkdv, sum, dq] = kernels.map((k) => k.counts);
  assert.equal(stats!.globalReadBytes, 4 * (256 + 16));
  // K, V once per split; per tile and head Q, dO (256), stats 32, metadata 48, entry 4;
  // 4 workgroups × (8 + 4 threads × 2 keys × 12).
  assert.equal(dkdv!.globalReadBytes, 2 * 512 + 6 * 340 + 4 * 104);
  assert.equal(dkdv!.globalWriteBytes, 2 * 512);
  assert.equal(sum!.globalReadBytes, 2 * 512);
  assert.equal(sum!.globalWriteBytes, 512);
  // Q, dO once; per tile and head K, V 256, metadata 48, entry 4; 4 workgroups ×
  // (8 + 4 threads × 2 rows × (12 + 8)).
  assert.equal(dq!.globalReadBytes, 1024 + 6 * 308 + 4 * 168);
  assert.equal(total.globalReadBytes, 1088 + 3480 + 1024 + 3544);
  assert.equal(total.globalWriteBytes, 128 + 1024 + 512 + 512);
  assert.equal(total.workgroups, 1 + 4 + 1 + 4);
  // Per tile: dK/dV score 64 loads / 256 FMAs, accumulate 48 / 256; dQ 64 / 256, 24 / 128.
  assert.equal(total.workgroupLoadsPerFma, 200 / 896);
  assert.equal(kernels[1]!.scoreLoadsPerFma, 0.25);
  assert.equal(kernels[3]!.scoreLoadsPerFma, 0.25);
});

Deno.test("forward counts with f16 q, k, v and subgroup row reductions, by hand", () => {
  const f32 = attentionCounts("forward", problem, tiling);
  const { total, kernels } = attentionCounts("forward", problem, tiling, 1, {
    dtype: "f16",
    subgroups: true,
  });
  // Q 128 × 2 B; K and V 2·4·8·2 = 128 B per tile and head (6) plus metadata and entry 52;
  // the same 4 workgroups × 104 of bounds and row metadata.
  assert.equal(total.globalReadBytes, 256 + 6 * 180 + 4 * 104);
  // out stays f32 (512 B), lse f32 (64 B).
  assert.equal(total.globalWriteBytes, 512 + 64);
  // q, k, v 256 × 2 B; out 128 × 4 B; lse 16 × 4 B.
  assert.equal(total.minBytes, 512 + 512 + 64);
  // Row max per tile pair (6) and row sum per workgroup (4): 10 exchanges, each of 4 threads ×
  // 2 rows. Workgroup memory: 1 store + TC = 2 loads per row, 3 barriers per tile; subgroups:
  // log₂ 2 = 1 shuffle per row, no accesses, 2 barriers, no 4·Br·TC = 32-byte partial array.
  assert.equal(f32.kernels[0]!.reductionWorkgroupAccesses, 10 * 4 * 2 * 3);
  assert.equal(f32.kernels[0]!.reductionShuffles, 0);
  assert.equal(f32.kernels[0]!.barriersPerTile, 3);
  assert.equal(kernels[0]!.reductionWorkgroupAccesses, 0);
  assert.equal(kernels[0]!.reductionShuffles, 10 * 4 * 2);
  assert.equal(kernels[0]!.barriersPerTile, 2);
  assert.equal(total.workgroupBytes, f32.total.workgroupBytes - 32);
  // The hot loops are the same kernel code.
  assert.equal(total.workgroupLoadsPerFma, f32.total.workgroupLoadsPerFma);
});

Deno.test("backward counts with f16 operands, f16 out/dO, two splits and subgroups, by hand", () => {
  const { total, kernels } = attentionCounts("backward", problem, tiling, 2, {
    dtype: "f16",
    outDtype: "f16",
    subgroups: true,
  });
  const [stats, dkdv, sum, dq] = kernels;
  // Row stats: out and dO 2 × 128 × 2 B, lse 64 B; 8 lanes per row, 3 shuffles each.
  assert.equal(stats!.counts.globalReadBytes, 512 + 64);
  assert.equal(stats!.counts.workgroups, 2);
  assert.equal(stats!.reductionShuffles, 16 * 8 * 3);
  // K, V 256 B per split; per tile and head Q and dO 4·8·(2 + 2) B, stats 32, metadata 48,
  // entry 4; partials stay f32.
  assert.equal(dkdv!.counts.globalReadBytes, 2 * 256 + 6 * 212 + 4 * 104);
  assert.equal(dkdv!.counts.globalWriteBytes, 2 * 512);
  // The ordered sum reads f32 partials and writes f16 dK, dV.
  assert.equal(sum!.counts.globalReadBytes, 2 * 512);
  assert.equal(sum!.counts.globalWriteBytes, 256);
  // Q and dO 128 × 4 B once; K, V 128 B per tile and head plus 52; per workgroup 168.
  assert.equal(dq!.counts.globalReadBytes, 512 + 6 * 180 + 4 * 168);
  assert.equal(dq!.counts.globalWriteBytes, 256);
  // q, k, v 512 B; out, dO 512 B; lse 64 B; dQ, dK, dV 512 B.
  assert.equal(total.minBytes, 512 + 512 + 64 + 512);
  assert.equal(dkdv!.barriersPerTile, 2);
  assert.equal(dq!.barriersPerTile, 2);
});

Deno.test("the tilings chosen for 48 KiB reach ≤ 0.25 loads per FMA in the score loops", () => {
  const limits = {
    maxComputeWorkgroupStorageSize: 49152,
    maxComputeInvocationsPerWorkgroup: 1024,
    maxComputeWorkgroupSizeX: 1024,
  };
  for (const headDim of [12, 16, 64, 80, 128]) {
    const forward = chooseTiling(limits, "forward", headDim);
    assert.ok(loopLoadsPerFma("forward", headDim, forward).score <= 0.25, `forward D=${headDim}`);
    const backward = chooseTiling(limits, "backward", headDim);
    for (const kernel of ["dkdv", "dq"] as const) {
      const loads = loopLoadsPerFma(kernel, headDim, backward).score;
      assert.ok(loads <= 0.25, `${kernel} D=${headDim}: ${loads}`);
    }
  }
});
