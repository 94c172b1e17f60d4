/**
 * Kernel benchmark: times matmul, RMSNorm and cross-entropy with GPU
 * timestamps (`timestamp-query`) when offered, else wall-clock around
 * `onSubmittedWorkDone`. Prints a table and writes
 * `bench/results/kernels-<date>.json`. Tiny shapes on CPU adapters
 * (lavapipe), the shapes on a real GPU.
 *
 * Usage: deno task bench:kernels [--reps N]
 *        deno task bench:kernels --tune [--all] [--layouts nt,nn,tn] [--dtypes f32,f16]
 *
 * `--tune` first sweeps the matmul kernel family (`--all`: the whole variant
 * grid) at the shapes on a GPU (tiny shapes on CPU adapters, whose
 * numbers mean nothing), in each layout (`nt` = x·Wᵀ forward, `nn` = dX,
 * `tn` = dW), prints variant × shape TFLOP/s, writes the best table to
 * `bench/results/matmul-tuning-<date>.json` (load it with
 * `IRFORGE_MATMUL_TUNING=<file>`) and runs the usual table with it.
 *
 * @module
 */

import { parseArgs } from "node:util";
// Not re-exported by @irforge/tensor's mod.ts yet.
import { traceMatmulKernels } from "@irforge/tensor";
import {
  describeMatmulTuning,
  MATMUL_FAMILY,
  type MatmulMeasurement,
  type MatmulShape,
  matmulVariantGrid,
  tuneMatmul,
  useMatmulTuning,
  variantName,
  writeMatmulTuningFile,
} from "@irforge/tensor/matmul-tuning";
import {
  crossEntropy,
  describeNoGpu,
  type Device,
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

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "5" },
    tune: { type: "boolean", default: false },
    all: { type: "boolean", default: false },
    layouts: { type: "string", default: "nt,nn,tn" },
    dtypes: { type: "string", default: "f32" },
  },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 1) {
  console.error(`--reps must be a positive integer, got ${values.reps}`);
  Deno.exit(2);
}
const layouts = values.layouts.split(",");
const dtypes = values.dtypes.split(",");
for (const l of layouts) {
  if (!["nt", "nn", "tn"].includes(l)) {
    console.error(`--layouts: "${l}" is not one of nt (x·Wᵀ), nn (dX), tn (dW)`);
    Deno.exit(2);
  }
}
for (const t of dtypes) {
  if (!["f32", "f16"].includes(t)) {
    console.error(`--dtypes: "${t}" is not f32 or f16`);
    Deno.exit(2);
  }
}

let device: Device;
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
  variant?: string;
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

const stamp = new Date().toISOString().replace(/[:.]/g, "-");
if (values.tune) await tune();

/** Sweeps the matmul family, prints variant × shape, writes and activates the best table. */
async function tune(): Promise<void> {
  // M×K×N of x·Wᵀ; the backward products of the same layer are dX = dY·W
  // (M×N×K, nn) and dW = dYᵀ·X (N×M×K, tn).
  const problems: [number, number, number][] = cpu
    ? [[64, 64, 64], [128, 96, 64]]
    : [[4096, 4096, 4096], [8192, 768, 2048], [8192, 2048, 768], [8192, 768, 32768]];
  const shapes: MatmulShape[] = [];
  for (const dtype of dtypes as ("f32" | "f16")[]) {
    if (dtype === "f16" && !device.hasF16) continue;
    for (const [M, K, N] of problems) {
      // f16 is the weight's dtype (activations and gradients stay f32).
      if (layouts.includes("nt")) shapes.push({ M, N, K, transB: true, bType: dtype });
      if (layouts.includes("nn")) shapes.push({ M, N: K, K: N, bType: dtype });
      if (layouts.includes("tn")) shapes.push({ M: N, N: K, K: M, transA: true });
    }
  }
  const unique = [...new Map(shapes.map((s) => [JSON.stringify(s), s])).values()];
  const candidates = values.all ? matmulVariantGrid() : [...MATMUL_FAMILY];
  console.log(
    `tuning ${candidates.length} variants × ${unique.length} shapes` +
      (cpu ? " (CPU adapter: tiny shapes, the rates are meaningless)" : ""),
  );
  const result = await tuneMatmul(unique, candidates, {
    reps,
    onProgress: (m: MatmulMeasurement, done: number, total: number) => {
      const what = m.skipped ? `skipped: ${m.skipped}` : `${m.tflops.toFixed(3)} TFLOP/s`;
      console.log(`[${done}/${total}] ${m.shapeName} ${m.variantName}: ${what}`);
    },
  });
  // variant × shape table of TFLOP/s.
  const grid = new Map<string, Record<string, string>>();
  for (const m of result.measurements) {
    const row = grid.get(m.variantName) ?? { variant: m.variantName };
    row[m.shapeName] = m.skipped ? "skip" : m.tflops.toFixed(cpu ? 4 : 2);
    grid.set(m.variantName, row);
  }
  console.log(`TFLOP/s (${result.timing}${cpu ? ", CPU adapter: meaningless" : ""})`);
  console.table([...grid.values()]);
  const skipped = result.measurements.filter((m) => m.skipped);
  if (skipped.length) {
    console.log(`${skipped.length} measurements skipped:`);
    const reasons = new Map<string, number>();
    for (const m of skipped) {
      const key = `${m.variantName}: ${m.skipped}`;
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    }
    for (const [reason, n] of reasons) console.log(`  ${n}× ${reason}`);
  }
  console.log("best table:");
  for (const line of describeMatmulTuning(result.table)) console.log(`  ${line}`);
  await Deno.mkdir("bench/results", { recursive: true });
  const file = `bench/results/matmul-tuning-${stamp}.json`;
  writeMatmulTuningFile(file, result.table, {
    note: cpu ? "CPU adapter (lavapipe): timings are meaningless, machinery check only" : "",
    timing: result.timing,
    reps,
    measurements: result.measurements.map((m) => ({
      shape: m.shapeName,
      variant: m.variantName,
      ms: m.ms,
      tflops: m.tflops,
      error: m.error,
      skipped: m.skipped,
    })),
  });
  console.log(`wrote ${file} (use it: IRFORGE_MATMUL_TUNING=${file})`);
  useMatmulTuning(result.table);
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
    const { kernels } = traceMatmulKernels(() =>
      noGrad(() => tidy(() => matmul(a, w, { transB: true })))
    );
    rows.push({
      op: "matmul x·Wᵀ",
      variant: kernels.map((k) => variantName(k.variant)).join(" + "),
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
const file = `bench/results/kernels-${stamp}.json`;
await Deno.writeTextFile(
  file,
  JSON.stringify({ adapter: device.adapter, timestamps: device.hasTimestamps, rows }, null, 2),
);
console.log(`wrote ${file}`);
