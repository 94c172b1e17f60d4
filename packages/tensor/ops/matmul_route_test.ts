import { deepEqual, equal } from "node:assert/strict";
import { autoSplitK, explainMatmulRoute, routeMatmul, SPLIT_MIN_CHUNK } from "./matmul_route.ts";
import {
  GPU_TABLE,
  LARGE_PREFETCH_VARIANT,
  LARGE_VARIANT,
  type MatmulShape,
  type MatmulTuningTable,
  SMALL_VARIANT,
  THIN_VARIANT,
} from "./matmul_table.ts";

const limits = {
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxStorageBufferBindingSize: 2 ** 31 - 4,
};
const H200 = { adapter: { description: "NVIDIA H200" }, isCpuAdapter: false, limits };
const CPU = { adapter: { description: "llvmpipe" }, isCpuAdapter: true, limits };

/** M×K×N like the benches. */
const nt = (M: number, K: number, N: number): MatmulShape => ({ M, N, K, transB: true });

Deno.test("routing on an H200: split-K only where the tiles fill under 2 waves and K is long", () => {
  const route = (s: MatmulShape) => routeMatmul(s, H200, GPU_TABLE);
  // 1024 output tiles of 128×128 (3.9 waves of 264): no split.
  deepEqual(route(nt(4096, 4096, 4096)), { variant: LARGE_VARIANT, splitK: 1 });
  deepEqual(route(nt(8192, 768, 2048)), { variant: LARGE_VARIANT, splitK: 1 });
  // 8192×768 outputs: 384 tiles (1.45 waves) with K = 2048: 2 splits → 768 workgroups.
  deepEqual(route(nt(8192, 2048, 768)), { variant: LARGE_VARIANT, splitK: 2 });
  // dW 2048×8192×768 and 768×8192×2048: 96 tiles, K = 8192: 6 splits → 576 workgroups.
  deepEqual(route({ M: 2048, N: 768, K: 8192, transA: true }).splitK, 6);
  deepEqual(route({ M: 768, N: 2048, K: 8192, transA: true }).splitK, 6);
  // LM head: the measured prefetch variant; 16384 tiles need no split.
  deepEqual(route(nt(8192, 768, 32768)), { variant: LARGE_PREFETCH_VARIANT, splitK: 1 });
  // Its dX (8192×32768×768): 384 tiles, K = 32768: 2 splits.
  deepEqual(route({ M: 8192, N: 768, K: 32768 }), { variant: LARGE_PREFETCH_VARIANT, splitK: 2 });
  // Short K never splits, however few the tiles.
  equal(route(nt(512, 768, 512)).splitK, 1);
  // A rank-16 LoRA product x·Aᵀ (4096 tokens × 4096 in): 64-wide tiles, 64 of them → 8 splits.
  deepEqual(route(nt(4096, 4096, 16)), { variant: THIN_VARIANT, splitK: 8 });
  // f16 weights route like f32 (the entries match every dtype).
  deepEqual(route({ ...nt(8192, 2048, 768), bType: "f16" }), route(nt(8192, 2048, 768)));
});

Deno.test("routing: measured split factors win, device limits fall back, CPU waves", () => {
  const table: MatmulTuningTable = {
    version: 1,
    default: LARGE_VARIANT,
    entries: [{ match: { layout: "tn" }, variant: LARGE_VARIANT, splitK: 3 }],
  };
  // The entry's factor (tile-rounded: 8192 / 3 → 2736 = 342 tiles of 8, 3 ranges).
  equal(routeMatmul({ M: 2048, N: 768, K: 8192, transA: true }, H200, table).splitK, 3);
  equal(routeMatmul({ M: 64, N: 64, K: 20, transA: true }, H200, table).splitK, 3); // 8, 8, 4
  equal(routeMatmul({ M: 64, N: 64, K: 8, transA: true }, H200, table).splitK, 1);
  // A device without room for the variant gets the small one.
  const tiny = { ...H200, limits: { ...limits, maxComputeWorkgroupStorageSize: 8192 } };
  equal(
    routeMatmul(nt(4096, 4096, 4096), tiny, { ...table, default: { ...LARGE_VARIANT, bk: 32 } })
      .variant,
    SMALL_VARIANT,
  );
  // On a CPU adapter a wave is one workgroup per thread: with 2 threads an 8×8 output
  // (one tile) of K = 1024 splits in 2, K = 1023 cannot (ranges ≥ SPLIT_MIN_CHUNK).
  equal(autoSplitK({ M: 8, N: 8, K: 2 * SPLIT_MIN_CHUNK }, SMALL_VARIANT, CPU, 2), 2);
  equal(autoSplitK({ M: 8, N: 8, K: 2 * SPLIT_MIN_CHUNK - 1 }, SMALL_VARIANT, CPU, 2), 1);
  equal(autoSplitK({ M: 128, N: 64, K: 8192 }, SMALL_VARIANT, CPU, 2), 2);
  equal(autoSplitK({ M: 256, N: 64, K: 8192 }, SMALL_VARIANT, CPU, 2), 1);
  // Scratch bounded by one binding: 4 MiB slabs (1024×1024 f32), 8 MiB binding: 2 slabs
  // although 64 tiles would want 9.
  const small = { ...H200, limits: { ...limits, maxStorageBufferBindingSize: 2 ** 23 } };
  equal(autoSplitK({ M: 1024, N: 1024, K: 65536 }, LARGE_VARIANT, H200), 9);
  equal(autoSplitK({ M: 1024, N: 1024, K: 65536 }, LARGE_VARIANT, small), 2);
});

Deno.test("explainMatmulRoute: the counts and the sentence behind each choice", () => {
  const down = explainMatmulRoute(nt(8192, 2048, 768), H200, GPU_TABLE);
  equal(down.route.splitK, 2);
  equal(down.counts.workgroups, 768);
  equal(down.unsplitWaves, 384 / 264);
  equal(down.waves, 768 / 264);
  // 2 slabs of 8192×768 f32 written and read back: 2 × 2 × 25.2 MB; the epilogue's
  // single write of C moves to the reduction (same bytes).
  equal(
    down.reason,
    "384 output tiles fill 1.45 waves of 264 (< 2) and K = 2048: 2 splits of 1024 make " +
      "768 workgroups (2.91 waves) for 100.7 MB more global traffic",
  );
  equal(down.passes.reduce!.globalReadBytes, 2 * 8192 * 768 * 4);
  equal(
    explainMatmulRoute(nt(4096, 4096, 4096), H200, GPU_TABLE).reason,
    "1024 output tiles fill 3.88 waves of 264: no split",
  );
  equal(
    explainMatmulRoute(nt(8192, 768, 768), H200, GPU_TABLE).reason,
    "384 output tiles fill 1.45 waves of 264 but K = 768 is too short to split into ranges of " +
      "512 (or the scratch would not fit one binding)",
  );
  const tuned: MatmulTuningTable = {
    version: 1,
    default: LARGE_VARIANT,
    entries: [{ match: { layout: "nt" }, variant: LARGE_VARIANT, splitK: 1, source: "tuned" }],
  };
  equal(
    explainMatmulRoute(nt(8192, 2048, 768), H200, tuned).reason,
    "the table fixes split 1 (tuned)",
  );
});
