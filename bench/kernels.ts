/**
 * Kernel benchmark: times matmul, RMSNorm and cross-entropy with GPU
 * timestamps (`timestamp-query`) when offered, else wall-clock around
 * `onSubmittedWorkDone`. Prints a table and writes
 * `bench/results/kernels-<date>.json`. Tiny shapes on CPU adapters
 * (lavapipe), the shapes on a real GPU.
 *
 * Usage: deno task bench:kernels [--reps N]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  crossEntropy,
  describeNoGpu,
  getDevice,
  getRuntime,
  matmul,
  noGrad,
  randn,
  rmsNorm,
  syncGpu,
  type Tensor,
  tensor,
  tidy,
} from "@irforge/tensor";

const { values } = parseArgs({ options: { reps: { type: "string", default: "5" } } });
const reps = Number(values.reps);

let device;
try {
  device = await getDevice();
} catch (e) {
  console.error(describeNoGpu(e) ?? String(e));
  Deno.exit(1);
}
const cpu = device.isCpuAdapter;
console.log(
  `adapter: ${device.adapter.description} (${
    cpu ? "CPU: tiny shapes" : "GPU"
  }), timestamps: ${device.hasTimestamps}`,
);

interface Row {
  op: string;
  shape: string;
  dtype: string;
  ms: number;
  rate: string;
}
const rows: Row[] = [];

/** Median time of `run` in ms (GPU timestamps summed over its dispatches, else wall clock). */
async function time(run: () => Tensor): Promise<number> {
  noGrad(() => tidy(() => void run())); // warm up: compile pipelines
  await syncGpu();
  const rt = getRuntime();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    if (rt.startTiming()) {
      noGrad(() => tidy(() => void run()));
      const spans = await rt.stopTiming();
      samples.push(spans.reduce((s, [, ns]) => s + ns, 0) / 1e6);
    } else {
      const t0 = performance.now();
      noGrad(() => tidy(() => void run()));
      await syncGpu();
      samples.push(performance.now() - t0);
    }
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

const matmuls: [number, number, number][] = cpu
  ? [[64, 64, 64], [128, 96, 64]]
  : [[4096, 4096, 4096], [8192, 768, 2048], [8192, 2048, 768], [8192, 768, 32768]];
for (const dtype of ["f32", "f16"] as const) {
  if (dtype === "f16" && !device.hasF16) continue;
  for (const [M, K, N] of matmuls) {
    const a = randn([M, K], { seed: 1, dtype }).keep(),
      w = randn([N, K], { seed: 2, dtype }).keep();
    const ms = await time(() => matmul(a, w, { transB: true }));
    rows.push({
      op: "matmul x·Wᵀ",
      shape: `${M}×${K}×${N}`,
      dtype,
      ms,
      rate: `${(2 * M * N * K / (ms / 1e3) / 1e12).toFixed(3)} TFLOP/s`,
    });
    a.dispose();
    w.dispose();
  }
}

const [R, D] = cpu ? [64, 256] : [8192, 4096];
{
  const x = randn([R, D], { seed: 3 }).keep(), w = randn([D], { seed: 4 }).keep();
  const ms = await time(() => rmsNorm(x, w, 1e-5));
  rows.push({
    op: "rmsnorm",
    shape: `${R}×${D}`,
    dtype: "f32",
    ms,
    rate: `${(2 * R * D * 4 / (ms / 1e3) / 1e9).toFixed(1)} GB/s`,
  });
  x.dispose();
  w.dispose();
}
const [N, V] = cpu ? [32, 1000] : [8192, 32768];
{
  const logits = randn([N, V], { seed: 5 }).keep();
  const targets = tensor(Array.from({ length: N }, (_, i) => (i * 7919) % V), [N], "i32").keep();
  const ms = await time(() => crossEntropy(logits, targets));
  rows.push({
    op: "cross_entropy",
    shape: `${N}×${V}`,
    dtype: "f32",
    ms,
    rate: `${(N * V * 4 / (ms / 1e3) / 1e9).toFixed(1)} GB/s`,
  });
  logits.dispose();
  targets.dispose();
}

console.table(rows.map((r) => ({ ...r, ms: r.ms.toFixed(3) })));
await Deno.mkdir("bench/results", { recursive: true });
const file = `bench/results/kernels-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
await Deno.writeTextFile(
  file,
  JSON.stringify({ adapter: device.adapter, timestamps: device.hasTimestamps, rows }, null, 2),
);
console.log(`wrote ${file}`);
