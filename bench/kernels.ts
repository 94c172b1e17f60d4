/**
 * The kernel lab's benchmark: walks every registered lab family
 * (`@irforge/tensor/lab`) and prints, for each kernel × variant × problem,
 * the roofline's two numbers (FLOPs, the fewest bytes the problem must
 * move), the variant's own counts (global bytes read and written,
 * workgroup-memory loads per FMA, workgroups launched and the waves they
 * fill on this adapter — the wave estimate is printed with its basis) and,
 * unless `--counts-only`, its time: the median of ≥ 10 runs after warm-up
 * with min and max; GPU timestamps (only the named kernel's dispatches) when
 * the device has them, with a wall-clock cross-check flagged when the two
 * disagree by over 20% on work longer than 5 ms.
 *
 * CPU adapters (lavapipe) get small problems and their times mean nothing;
 * the counts are how a design is judged before a GPU is at hand.
 *
 * Usage: deno task bench:kernels [--families a,b] [--kernels x,y] [--reps N] [--counts-only]
 *        deno task bench:kernels --tune [--all] [--layouts nt,nn,tn] [--dtypes f32,f16]
 *                                [--shapes issue|transformer|all] [--splits 1,2,4,8]
 *
 * `--tune` sweeps the matmul family (`--all`: the whole variant grid) at
 * each `--splits` factor (and the one routing would pick) — and, at f16×f16
 * shapes (`--dtypes f16` adds them next to the f16-weight ones), the
 * subgroup-matrix kernel where the adapter has it — at the H200
 * sitting's shapes (`--shapes transformer`: every product of a
 * mistral-small and a Mistral-7B step; `all`: both) on a GPU (tiny shapes on
 * CPU adapters) in each
 * layout (`nt` = x·Wᵀ forward, `nn` = dX, `tn` = dW), choosing by median;
 * writes the table to `bench/results/matmul-tuning-<date>.json` (load it with
 * `IRFORGE_MATMUL_TUNING=<file>`), then re-times each shape through `matmul`
 * with the table loaded and flags any chosen variant whose time differs from
 * its own sweep figure by more than 15%.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { matmul, noGrad, randn, tidy, traceMatmulKernels } from "@irforge/tensor";
import {
  describeMatmulTuning,
  MATMUL_FAMILY,
  type MatmulMeasurement,
  type MatmulShape,
  matmulVariantGrid,
  MISTRAL_7B_DIMS,
  MISTRAL_SMALL_DIMS,
  routeName,
  shapeName,
  transformerMatmulShapes,
  tuneMatmul,
  useMatmulTuning,
  writeMatmulTuningFile,
} from "@irforge/tensor/matmul-tuning";
import {
  estimateWave,
  formatTiming,
  labFamilies,
  layerShapes,
  MATMUL_PROBLEMS,
  MIN_REPS,
  timeRecorded,
  type Timing,
  waves,
} from "@irforge/tensor/lab";
import { openDevice } from "./lib/device.ts";
import { describeEnvironment, environment, writeResult } from "./lib/report.ts";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: String(MIN_REPS) },
    tune: { type: "boolean", default: false },
    all: { type: "boolean", default: false },
    layouts: { type: "string", default: "nt,nn,tn" },
    dtypes: { type: "string", default: "f32" },
    families: { type: "string" },
    shapes: { type: "string", default: "issue" },
    splits: { type: "string", default: "1,2,4,8" },
    kernels: { type: "string" },
    "counts-only": { type: "boolean", default: false },
  },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < MIN_REPS) {
  console.error(
    `--reps must be an integer ≥ ${MIN_REPS} (medians of fewer runs are not trusted), got ${values.reps}`,
  );
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
if (!["issue", "transformer", "all"].includes(values.shapes)) {
  console.error(
    `--shapes: "${values.shapes}" is not issue (the H200 sitting's four), transformer (mistral-small and 7B) or all`,
  );
  Deno.exit(2);
}
const splitFactors = values.splits.split(",").map(Number);
if (splitFactors.some((f) => !Number.isInteger(f) || f < 1)) {
  console.error(`--splits must be positive integers separated by commas, got "${values.splits}"`);
  Deno.exit(2);
}
const familyFilter = values.families?.split(",");
const kernelFilter = values.kernels?.split(",");
for (const name of familyFilter ?? []) {
  if (!labFamilies().some((f) => f.name === name)) {
    console.error(
      `--families: "${name}" is not one of ${labFamilies().map((f) => f.name).join(", ")}`,
    );
    Deno.exit(2);
  }
}

const device = await openDevice();
const cpu = device.isCpuAdapter;
const scale = cpu ? "cpu" : "gpu";
const env = environment(device.adapter, { cpuAdapter: cpu, timestamps: device.hasTimestamps });
console.log(
  `kernels · ${describeEnvironment(env)} · ${scale} problems${
    cpu ? " (CPU adapter: times are meaningless, counts are not)" : ""
  }`,
);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");

const tuning: Record<string, unknown> = {};
if (values.tune) Object.assign(tuning, await tune());

/** Sweeps the matmul family, writes and activates the best table, then checks it reproduces. */
async function tune(): Promise<Record<string, unknown>> {
  const shapes: MatmulShape[] = [];
  const wanted = layouts as ("nt" | "nn" | "tn")[];
  for (const dtype of dtypes as ("f32" | "f16")[]) {
    if (dtype === "f16" && !device.hasF16) continue;
    if (values.shapes !== "transformer") {
      for (const [M, K, N] of MATMUL_PROBLEMS[scale]) {
        const [nt, nn, tn] = layerShapes(M, K, N, dtype);
        if (layouts.includes("nt")) shapes.push(nt!);
        if (layouts.includes("nn")) shapes.push(nn!);
        if (layouts.includes("tn") && dtype === "f32") shapes.push(tn!);
      }
    }
    // Every product of a mistral-small and a Mistral-7B step (GPU scale only).
    if (values.shapes !== "issue" && !cpu) {
      for (const dims of [MISTRAL_SMALL_DIMS, MISTRAL_7B_DIMS]) {
        const products = transformerMatmulShapes(dims, { layouts: wanted, weightType: dtype });
        shapes.push(...products.filter((s) => dtype === "f32" || !s.transA));
      }
    }
  }
  // f16 also means f16 compute (QLoRA's compute dtype, f16 activations): the same forward and
  // input-gradient products with both operands f16, where the subgroup-matrix kernel competes.
  if (dtypes.includes("f16") && device.hasF16) {
    for (const s of [...shapes]) {
      if (s.bType === "f16" && !s.transA) shapes.push({ ...s, aType: "f16" });
    }
  }
  const unique = [...new Map(shapes.map((s) => [JSON.stringify(s), s])).values()];
  shapes.length = 0;
  shapes.push(...unique);
  const candidates = values.all ? matmulVariantGrid() : [...MATMUL_FAMILY];
  console.log(
    `tuning ${candidates.length} variants × ${shapes.length} shapes, median of ${reps} runs each`,
  );
  const result = await tuneMatmul(shapes, candidates, {
    reps,
    splitFactors,
    onProgress: (m: MatmulMeasurement, done: number, total: number) => {
      const what = m.skipped
        ? `skipped: ${m.skipped}`
        : `${m.tflops.toFixed(3)} TFLOP/s (${m.ms.toFixed(3)} ms)`;
      console.log(`[${done}/${total}] ${m.shapeName} ${m.routeName ?? m.variantName}: ${what}`);
    },
  });
  const grid = new Map<string, Record<string, string>>();
  for (const m of result.measurements) {
    const route = m.routeName ?? m.variantName;
    const row = grid.get(route) ?? { route };
    row[m.shapeName] = m.skipped ? "skip" : m.tflops.toFixed(cpu ? 4 : 2);
    grid.set(route, row);
  }
  console.log(`TFLOP/s (${result.timing}, median of ${reps})`);
  console.table([...grid.values()]);
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
      variant: m.routeName ?? m.variantName,
      ms: m.ms,
      tflops: m.tflops,
      error: m.error,
      skipped: m.skipped,
    })),
  });
  console.log(`wrote ${file} (use it: IRFORGE_MATMUL_TUNING=${file})`);
  useMatmulTuning(result.table);

  // The table run: each shape through `matmul` with the table loaded, against the sweep's figure
  // for the variant the table chose there.
  const reproduction: Record<string, unknown>[] = [];
  for (const shape of shapes) {
    const a = randn(shape.transA ? [shape.K, shape.M] : [shape.M, shape.K], {
      seed: 1,
      dtype: shape.aType ?? "f32",
    }).keep();
    const b = randn(shape.transB ? [shape.N, shape.K] : [shape.K, shape.N], {
      seed: 2,
      dtype: shape.bType ?? "f32",
    }).keep();
    const run = () =>
      noGrad(() => tidy(() => void matmul(a, b, { transA: shape.transA, transB: shape.transB })));
    const { kernels } = traceMatmulKernels(() =>
      noGrad(() => tidy(() => matmul(a, b, { transA: shape.transA, transB: shape.transB })))
    );
    const chosen = kernels.map((k) => routeName(k.variant, k.splits ?? 1)).join(" + ");
    const t = await timeRecorded(run, { reps });
    const sweep = result.measurements.find((m) =>
      m.shapeName === shapeName(shape) && (m.routeName ?? m.variantName) === chosen
    );
    const difference = sweep && Number.isFinite(sweep.ms)
      ? (t.medianMs - sweep.ms) / sweep.ms
      : NaN;
    reproduction.push({
      shape: shapeName(shape),
      variant: chosen,
      sweepMs: sweep?.ms,
      tableRunMs: t.medianMs,
      difference,
      verdict: Number.isNaN(difference)
        ? "no sweep figure"
        : Math.abs(difference) <= 0.15
        ? "agrees"
        : "DISAGREES (>15%)",
    });
    a.dispose();
    b.dispose();
  }
  console.log("table run vs sweep (chosen variant):");
  console.table(reproduction.map((r) => ({
    ...r,
    sweepMs: (r.sweepMs as number | undefined)?.toFixed(3),
    tableRunMs: (r.tableRunMs as number).toFixed(3),
    difference: Number.isFinite(r.difference)
      ? `${(100 * (r.difference as number)).toFixed(1)}%`
      : "—",
  })));
  return { tuningFile: file, reproduction };
}

interface LabRow {
  family: string;
  kernel: string;
  variant: string;
  problem: string;
  flops: number;
  minBytes: number;
  globalReadBytes: number;
  globalWriteBytes: number;
  workgroupLoadsPerFma: number;
  workgroups: number;
  waves: number;
  timing?: Timing;
  rate?: string;
}

const rows: LabRow[] = [];
const bases = new Set<string>();
const fmt = (x: number) =>
  x >= 1e12
    ? `${(x / 1e12).toFixed(2)}T`
    : x >= 1e9
    ? `${(x / 1e9).toFixed(2)}G`
    : x >= 1e6
    ? `${(x / 1e6).toFixed(2)}M`
    : x >= 1e3
    ? `${(x / 1e3).toFixed(1)}k`
    : String(x);
for (const family of labFamilies()) {
  if (familyFilter && !familyFilter.includes(family.name)) continue;
  console.log(`\n${family.name} — ${family.files}`);
  for (const c of family.cases(scale, device)) {
    if (kernelFilter && !kernelFilter.includes(c.kernel)) continue;
    const k = c.counts;
    const wave = estimateWave(
      { description: device.adapter.description, isCpuAdapter: cpu },
      k.threadsPerWorkgroup,
      k.workgroupBytes,
    );
    bases.add(wave.basis);
    const row: LabRow = {
      family: family.name,
      kernel: c.kernel,
      variant: c.variant,
      problem: c.problem,
      flops: k.flops,
      minBytes: k.minBytes,
      globalReadBytes: k.globalReadBytes,
      globalWriteBytes: k.globalWriteBytes,
      workgroupLoadsPerFma: k.workgroupLoadsPerFma,
      workgroups: k.workgroups,
      waves: waves(k.workgroups, wave),
    };
    if (!values["counts-only"]) {
      const run = c.prepare();
      try {
        row.timing = await timeRecorded(run.record, {
          reps,
          kernel: device.hasTimestamps ? c.kernel : undefined,
        });
      } finally {
        run.dispose();
      }
      const s = row.timing.medianMs / 1e3;
      // Compute-bound kernels by FLOP rate, the rest by bandwidth over the minimum bytes.
      row.rate = k.workgroupLoadsPerFma > 0
        ? `${(k.flops / s / 1e12).toFixed(3)} TFLOP/s`
        : `${(k.minBytes / s / 1e9).toFixed(1)} GB/s`;
    }
    rows.push(row);
    console.log(
      `  ${c.kernel} · ${c.variant} · ${c.problem}: ${fmt(k.flops)}FLOP, min ${
        fmt(k.minBytes)
      }B, ` +
        `reads ${fmt(k.globalReadBytes)}B, writes ${fmt(k.globalWriteBytes)}B, ` +
        `${k.workgroupLoadsPerFma.toFixed(4)} wg loads/FMA, ${k.workgroups} workgroups = ${
          row.waves.toFixed(2)
        } waves` +
        (row.timing ? ` · ${formatTiming(row.timing)} · ${row.rate}` : ""),
    );
  }
}
console.log("\nwave estimates used:");
for (const b of bases) console.log(`  ${b}`);
const flagged = rows.filter((r) => r.timing?.flagged);
if (flagged.length) {
  console.log(`${flagged.length} timings disagree with the wall clock by more than 20%:`);
  for (const r of flagged) {
    console.log(`  ${r.kernel} ${r.variant} ${r.problem}: ${formatTiming(r.timing!)}`);
  }
}

const file = await writeResult({
  suite: "kernels",
  shape: scale === "gpu" ? "full" : "tiny",
  environment: env,
  rows: rows.map(({ timing, ...r }) => ({
    ...r,
    medianMs: timing?.medianMs ?? null,
    minMs: timing?.minMs ?? null,
    maxMs: timing?.maxMs ?? null,
    timing: timing?.source ?? null,
    wallMs: timing?.wallMs ?? null,
    flagged: timing?.flagged ?? null,
    rate: r.rate ?? null,
  })),
  notes: { waveBases: [...bases], reps, tuning },
});
console.log(`wrote ${file}`);
