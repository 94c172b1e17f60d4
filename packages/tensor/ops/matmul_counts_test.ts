import { deepEqual, equal, ok } from "node:assert/strict";
import {
  estimatedRegisters,
  matmulCounts,
  matmulPassCounts,
  matmulWave,
  splitPlan,
} from "./matmul_counts.ts";
import { LARGE_VARIANT, SMALL_VARIANT } from "./matmul_table.ts";

const H200 = { description: "NVIDIA H200", isCpuAdapter: false };
const CPU = { description: "llvmpipe (LLVM 15.0.6, 256 bits)", isCpuAdapter: true };

Deno.test("splitPlan: K ranges of whole K tiles, never an empty split", () => {
  deepEqual(splitPlan(37, 3, 16), { kChunk: 16, splits: 3 }); // 16 + 16 + 5
  deepEqual(splitPlan(40, 4, 16), { kChunk: 16, splits: 3 }); // 4 × 10 rounds up to 16
  deepEqual(splitPlan(40, 4, 32), { kChunk: 32, splits: 2 });
  deepEqual(splitPlan(8192, 8, 8), { kChunk: 1024, splits: 8 });
  deepEqual(splitPlan(5, 8, 16), { kChunk: 16, splits: 1 });
  deepEqual(splitPlan(100, 1, 16), { kChunk: 112, splits: 1 });
});

Deno.test("matmulCounts: an unsplit 100×70×40 product by hand", () => {
  // 64×64 tiles: 2 row tiles × 2 column tiles.
  const c = matmulCounts({ variant: SMALL_VARIANT, splitK: 1 }, { M: 100, N: 70, K: 40 });
  equal(c.flops, 2 * 100 * 70 * 40);
  equal(c.minBytes, (100 * 40 + 40 * 70 + 100 * 70) * 4);
  // A read by each of the 2 column tiles, B by each of the 2 row tiles.
  equal(c.globalReadBytes, 2 * 100 * 40 * 4 + 2 * 70 * 40 * 4);
  equal(c.globalWriteBytes, 100 * 70 * 4);
  // Per k step a 4×4 thread loads 1 + 1 vec4s for 16 FMAs.
  equal(c.workgroupLoadsPerFma, 2 / 16);
  equal(c.workgroups, 4);
  equal(c.threadsPerWorkgroup, 256);
  equal(c.workgroupBytes, 16 * (64 + 64) * 4);
  // 8×8 per thread: 2 + 2 vec4s for 64 FMAs.
  equal(
    matmulCounts({ variant: LARGE_VARIANT, splitK: 1 }, { M: 1, N: 1, K: 1 })
      .workgroupLoadsPerFma,
    4 / 64,
  );
});

Deno.test("matmulPassCounts: split-K scratch traffic, f16 operand bytes, broadcast, bias", () => {
  // batch 2, B broadcast and f16, K = 40 in 3 ranges of 16 (one 64×64 tile per entry).
  const problem = { M: 8, N: 12, K: 40, batch: 2, bType: "f16" as const, broadcast: "b" as const };
  const p = matmulPassCounts({ variant: SMALL_VARIANT, splitK: 4 }, { ...problem, bias: true });
  deepEqual(p.split, { kChunk: 16, splits: 3 });
  const outputs = 2 * 8 * 12;
  equal(p.product.flops, 2 * outputs * 40);
  // A [2, 8, 40] f32 + B [40, 12] f16 once + C + bias row.
  equal(p.product.minBytes, 2 * 8 * 40 * 4 + 40 * 12 * 2 + outputs * 4 + 12 * 4);
  // Each batch entry's tile reads its A rows and (the shared) B columns over all of K.
  equal(p.product.globalReadBytes, 2 * 8 * 40 * 4 + 2 * 12 * 40 * 2);
  equal(p.product.globalWriteBytes, 3 * outputs * 4);
  equal(p.product.workgroups, 2 * 3);
  // The reduction reads the 3 slabs and the bias per output, writes C once; vec4 threads.
  equal(p.reduce!.globalReadBytes, 3 * outputs * 4 + outputs * 4);
  equal(p.reduce!.globalWriteBytes, outputs * 4);
  equal(p.reduce!.workgroups, 1);
  equal(p.reduce!.workgroupLoadsPerFma, 0);
  const whole = matmulCounts({ variant: SMALL_VARIANT, splitK: 4 }, { ...problem, bias: true });
  equal(whole.globalReadBytes, p.product.globalReadBytes + p.reduce!.globalReadBytes);
  equal(whole.globalWriteBytes, 4 * outputs * 4);
  equal(whole.workgroups, 6);
  // Unsplit: the epilogue reads the bias itself.
  const one = matmulPassCounts({ variant: SMALL_VARIANT, splitK: 1 }, { ...problem, bias: true });
  equal(one.reduce, undefined);
  equal(one.product.globalReadBytes, p.product.globalReadBytes + outputs * 4);
});

Deno.test("matmulWave: register-limited residency on an H200, one workgroup per CPU thread", () => {
  // 128×128×8, 8×8: 64 accumulators + 16 fragments + 4 + 4 staged + 24 = 112 registers;
  // 112 × 256 threads leaves room for 2 workgroups in 64 Ki registers (threads alone allow 8).
  equal(estimatedRegisters(LARGE_VARIANT), 112);
  const large = matmulWave(H200, LARGE_VARIANT);
  equal(large.perMultiprocessor, 2);
  equal(large.workgroupsPerWave, 264);
  ok(large.basis.includes("registers"), large.basis);
  // 64×64×16, 4×4: 16 + 8 + 4 + 4 + 24 = 56 registers → 4 per multiprocessor.
  equal(estimatedRegisters(SMALL_VARIANT), 56);
  equal(matmulWave(H200, SMALL_VARIANT).workgroupsPerWave, 4 * 132);
  equal(matmulWave(CPU, LARGE_VARIANT, 2).workgroupsPerWave, 2);
});

Deno.test("counts of the issue's shapes: why split-K pays where it is routed", () => {
  const wave = matmulWave(H200, LARGE_VARIANT).workgroupsPerWave;
  const waves = (M: number, N: number, K: number, splitK: number) =>
    matmulCounts({ variant: LARGE_VARIANT, splitK }, { M, N, K }).workgroups / wave;
  // x·Wᵀ 8192×768×2048 (1024 tiles) vs 8192×2048×768 (384 tiles): same FLOPs and bytes.
  const fast = matmulCounts({ variant: LARGE_VARIANT, splitK: 1 }, { M: 8192, N: 2048, K: 768 });
  const slow = matmulCounts({ variant: LARGE_VARIANT, splitK: 1 }, { M: 8192, N: 768, K: 2048 });
  equal(fast.flops, slow.flops);
  equal(fast.minBytes, slow.minBytes);
  equal(fast.globalReadBytes, slow.globalReadBytes);
  equal(fast.workgroups, 1024);
  equal(slow.workgroups, 384);
  ok(waves(8192, 768, 2048, 1) < 2 && waves(8192, 768, 2048, 2) >= 2);
  // dW 2048×8192×768: 96 tiles, 0.36 of a wave; 8 splits of 1024 make 768 workgroups.
  equal(waves(2048, 768, 8192, 1), 96 / 264);
  ok(waves(2048, 768, 8192, 8) > 2.9);
  // Its scratch traffic (8 slabs written and read) stays under the operand reads.
  const dw = matmulCounts({ variant: LARGE_VARIANT, splitK: 8 }, { M: 2048, N: 768, K: 8192 });
  const dw1 = matmulCounts({ variant: LARGE_VARIANT, splitK: 1 }, { M: 2048, N: 768, K: 8192 });
  equal(dw.globalReadBytes - dw1.globalReadBytes, 8 * 2048 * 768 * 4);
  ok(dw.globalReadBytes < 2 * dw1.globalReadBytes);
});
