/**
 * Fused attention benchmark: forward and backward of the flash-attention
 * kernels with a dense causal mask and with the BlockRank layout
 * (`[instruction][doc 1]…[doc n][query]`) at 10, 30 and 100 documents.
 *
 * Full shape (a real GPU, or `--full`): 32 query heads × head_dim 128, 8 KV
 * heads (GQA), documents of 160 tokens, instruction and query 32 tokens.
 * Tiny shape (CPU adapters): 2 heads × 32, 1 KV head, documents of 16 tokens,
 * instruction and query 8.
 *
 * FLOP convention (see `lib/visible_pairs.ts`): only visible (query, key)
 * pairs count, 4·D per pair and query head forward, 10·D backward.
 * Times are wall clock from recording to `onSubmittedWorkDone` (the runtime
 * is flushed before waiting), median of `--reps`.
 *
 * Beside the times, every row carries the design counts of the tiling used
 * (`@irforge/tensor/attention` `attentionCounts`): workgroup loads per FMA of
 * the score loops and overall, global bytes against the minimum, workgroups
 * and the waves they fill on this adapter (the kernel lab's `estimateWave`),
 * so a design can be judged on a CPU adapter too.
 *
 * `--dtype f16` stores q, k, v and their gradients as f16 (f32 scores,
 * statistics and accumulation; out and dO stay f32, as `training.fp16` runs
 * them); it needs `shader-f16`. Counts follow the path the device takes
 * (subgroup row reductions where present), as the kernel lab's do.
 *
 * Usage: deno run -A bench/attention.ts [--full | --shape tiny|full] [--reps N] [--warmup N] [--docs 10,30,100] [--dtype f32|f16]
 *
 * @module
 */

import {
  blockRankMask,
  causalMask,
  type MaskMetadata,
  syncGpu,
  type Tensor,
} from "@irforge/tensor";
import {
  attentionBackward,
  attentionCounts,
  attentionForward,
  AttentionMask,
  type AttentionPassCounts,
  attentionSubgroups,
  type AttentionVariant,
  buildTileTable,
  chooseKeySplits,
  chooseTiling,
  flatRowLanes,
  kernelLayout,
  workgroupBytes,
  workgroupThreads,
} from "@irforge/tensor/attention";
import { estimateWave, waves } from "@irforge/tensor/lab";
import { openDevice } from "./lib/device.ts";
import { uniformTensor } from "./lib/random_fill.ts";
import {
  describeEnvironment,
  environment,
  median,
  parseSuiteArgs,
  printRows,
  type Row,
  timeRepeated,
  writeResult,
} from "./lib/report.ts";
import { attentionFlops, visiblePairs } from "./lib/visible_pairs.ts";

const device = await openDevice();
const args = parseSuiteArgs(Deno.args, device.isCpuAdapter, {
  docs: { type: "string", default: "10,30,100" },
  dtype: { type: "string", default: "f32" },
}, device.isCpuAdapter ? { reps: 2, warmup: 1 } : { reps: 10, warmup: 3 });
const env = environment(device.adapter, {
  cpuAdapter: device.isCpuAdapter,
  timestamps: device.hasTimestamps,
});
const dtype = String(args.values.dtype);
if (dtype !== "f32" && dtype !== "f16") {
  throw new Error(`--dtype must be "f32" or "f16", got "${dtype}"`);
}
if (dtype === "f16" && !device.hasF16) {
  throw new Error("--dtype f16 needs shader-f16, which this adapter does not offer");
}
console.log(`attention · ${describeEnvironment(env)} · shape ${args.shape} · ${dtype} operands`);

const full = args.shape === "full";
const shape = full
  ? { heads: 32, kvHeads: 8, headDim: 128, docLength: 160, instruction: 32, query: 32 }
  : { heads: 2, kvHeads: 1, headDim: 32, docLength: 16, instruction: 8, query: 8 };
const docCounts = String(args.values.docs).split(",").map(Number);
if (docCounts.some((n) => !Number.isInteger(n) || n < 1)) {
  throw new Error(
    `--docs must be positive integers separated by commas, got "${args.values.docs}"`,
  );
}
const { heads, kvHeads, headDim } = shape;
const forwardTiling = chooseTiling(device.limits, "forward", headDim);
const backwardTiling = chooseTiling(device.limits, "backward", headDim);
console.log(
  `tilings (head_dim ${headDim}): forward ${JSON.stringify(forwardTiling)}, backward ${
    JSON.stringify(backwardTiling)
  }`,
);

// The forward's subgroup choice and the row-stats lanes, as the dispatch makes them.
const forwardLayout = kernelLayout("forward", headDim, forwardTiling);
const forwardSubgroups = attentionSubgroups(forwardLayout.threads, forwardLayout.threadsPerRow);
const rowLanes = flatRowLanes();
const variantOf = (pass: "forward" | "backward"): AttentionVariant => ({
  dtype: dtype as "f32" | "f16",
  subgroups: pass === "forward" ? forwardSubgroups : rowLanes > 1,
  flatLanes: rowLanes,
});
console.log(
  `row reductions: forward ${forwardSubgroups ? "subgroups" : "workgroup memory"}, row stats ${
    rowLanes > 1 ? `${rowLanes} subgroup lanes` : "workgroup memory"
  }`,
);

/** The design counts of both passes on `meta` with the tilings the kernels choose here. */
function designCounts(meta: MaskMetadata, pairs: number) {
  const problem = { batch: meta.batch, heads, kvHeads, seqLen: meta.length, headDim };
  const forwardTable = buildTileTable(meta, forwardTiling.queryTile, forwardTiling.keyTile);
  const backwardTable = buildTileTable(meta, backwardTiling.queryTile, backwardTiling.keyTile);
  const keyTiles = Math.ceil(meta.length / backwardTiling.keyTile);
  const splits = chooseKeySplits(
    device,
    keyTiles * kvHeads * meta.batch,
    (heads / kvHeads) * backwardTable.activeCount / (keyTiles * meta.batch),
    workgroupThreads(backwardTiling, "backward", headDim),
    workgroupBytes("backward", headDim, backwardTiling),
  );
  return {
    splits,
    forward: attentionCounts(
      "forward",
      { ...problem, visiblePairs: pairs, activeTiles: forwardTable.activeCount },
      forwardTiling,
      1,
      variantOf("forward"),
    ),
    backward: attentionCounts(
      "backward",
      { ...problem, visiblePairs: pairs, activeTiles: backwardTable.activeCount },
      backwardTiling,
      splits,
      variantOf("backward"),
    ),
  };
}

/** Count columns of one pass: loads per FMA, bytes over the minimum, workgroups and waves. */
function countColumns(prefix: string, pass: AttentionPassCounts): Row {
  const row: Row = {
    [`${prefix}ScoreLoadsPerFma`]: Math.max(
      ...pass.kernels.filter((k) => k.scoreLoadsPerFma > 0).map((k) => k.scoreLoadsPerFma),
    ),
    [`${prefix}LoadsPerFma`]: pass.total.workgroupLoadsPerFma,
    [`${prefix}BytesOverMin`]: (pass.total.globalReadBytes + pass.total.globalWriteBytes) /
      pass.total.minBytes,
  };
  // Waves of the main kernel (the one with the most workgroups that runs the hot loops).
  for (const k of pass.kernels.filter((k) => k.counts.workgroupBytes > 0)) {
    const wave = estimateWave(
      { description: device.adapter.description, isCpuAdapter: device.isCpuAdapter },
      k.counts.threadsPerWorkgroup,
      k.counts.workgroupBytes,
    );
    const name = k.kernel.replace("attention-", "");
    row[`${name}Workgroups`] = k.counts.workgroups;
    row[`${name}Waves`] = waves(k.counts.workgroups, wave);
  }
  return row;
}

interface Measured {
  forwardMs: number;
  backwardMs: number;
}

/** Times forward and backward of one mask; all buffers made here, freed at the end. */
async function measure(meta: MaskMetadata): Promise<Measured> {
  const T = meta.length;
  const op = dtype as "f32" | "f16"; // q, k, v, dQ, dK, dV
  const tensors: Tensor[] = [
    uniformTensor([1, heads, T, headDim], op, 1, 1),
    uniformTensor([1, kvHeads, T, headDim], op, 2, 1),
    uniformTensor([1, kvHeads, T, headDim], op, 3, 1),
    uniformTensor([1, heads, T, headDim], "f32", 4, 1), // out
    uniformTensor([1, heads, T], "f32", 5, 1), // lse
    uniformTensor([1, heads, T, headDim], "f32", 6, 1), // dOut
    uniformTensor([1, heads, T, headDim], op, 7, 1), // dQ
    uniformTensor([1, kvHeads, T, headDim], op, 8, 1), // dK
    uniformTensor([1, kvHeads, T, headDim], op, 9, 1), // dV
  ];
  const [q, k, v, out, lse, dOut, dQ, dK, dV] = tensors.map((t) => t.buffer) as GPUBuffer[];
  const mask = new AttentionMask(meta);
  await syncGpu(); // the fills are recorded on the runtime's encoder
  const shapeArgs = { heads, kvHeads, headDim, mask, dtype: op };
  const forward = async () => {
    attentionForward({ ...shapeArgs, q: q!, k: k!, v: v!, out, lse });
    await syncGpu();
  };
  const backwardOnce = async () => {
    attentionBackward({
      ...shapeArgs,
      q: q!,
      k: k!,
      v: v!,
      out: out!,
      lse: lse!,
      dOut: dOut!,
      dQ,
      dK,
      dV,
    });
    await syncGpu();
  };
  const forwardMs = median(await timeRepeated(forward, args.reps, args.warmup));
  const backwardMs = median(await timeRepeated(backwardOnce, args.reps, args.warmup));
  mask.destroy();
  for (const t of tensors) t.dispose();
  return { forwardMs, backwardMs };
}

const rows: Row[] = [];
const totals = new Map<string, Map<number, number>>();
for (const layout of ["dense causal", "blockrank"] as const) {
  totals.set(layout, new Map());
  for (const n of docCounts) {
    const documents = Array<number>(n).fill(shape.docLength);
    const T = shape.instruction + n * shape.docLength + shape.query;
    const meta = layout === "blockrank"
      ? blockRankMask({
        length: T,
        rows: [{ instruction: shape.instruction, documents, query: shape.query }],
      })
      : causalMask({ batch: 1, length: T });
    const pairs = visiblePairs(meta);
    const flops = attentionFlops(pairs, heads, headDim);
    const counts = designCounts(meta, pairs);
    const m = await measure(meta);
    totals.get(layout)!.set(n, m.forwardMs + m.backwardMs);
    const row: Row = {
      layout,
      documents: n,
      tokens: T,
      visiblePairs: pairs,
      forwardMs: m.forwardMs,
      backwardMs: m.backwardMs,
      forwardTflops: flops.forward / (m.forwardMs / 1e3) / 1e12,
      backwardTflops: flops.backward / (m.backwardMs / 1e3) / 1e12,
      keySplits: counts.splits,
      ...countColumns("forward", counts.forward),
      ...countColumns("backward", counts.backward),
    };
    row.dtype = dtype;
    rows.push(row);
    console.log(
      `  ${layout} ${n} docs (T=${T}): forward ${m.forwardMs.toFixed(2)} ms, backward ${
        m.backwardMs.toFixed(2)
      } ms; score loops ${(row.forwardScoreLoadsPerFma as number).toFixed(3)} / ${
        (row.backwardScoreLoadsPerFma as number).toFixed(3)
      } workgroup loads per FMA`,
    );
  }
}
printRows(rows);

const growth: Row[] = [];
const [first, last] = [docCounts[0]!, docCounts[docCounts.length - 1]!];
if (first !== last) {
  for (const [layout, byDocs] of totals) {
    const pairsOf = (n: number) => rows.find((r) => r.layout === layout && r.documents === n)!;
    growth.push({
      layout,
      from: first,
      to: last,
      timeGrowth: byDocs.get(last)! / byDocs.get(first)!,
      pairGrowth: (pairsOf(last).visiblePairs as number) / (pairsOf(first).visiblePairs as number),
      target: layout === "blockrank" ? "≤ 10×" : "≈ 26× (reference)",
    });
  }
  console.log(`growth of forward+backward time, ${first} → ${last} documents:`);
  printRows(growth);
}

const file = await writeResult({
  suite: "attention",
  shape: args.shape,
  environment: env,
  rows: [...rows, ...growth.map((g) => ({ ...g, kind: "growth" }))],
  notes: {
    ...shape,
    dtype: `${dtype} q, k, v, dQ, dK, dV; f32 out, dO, scores and accumulation`,
    flops: "visible (query, key) pairs only; forward 4·D, backward 10·D per pair and query head",
    forwardTiling: JSON.stringify(forwardTiling),
    backwardTiling: JSON.stringify(backwardTiling),
    counts:
      "attentionCounts of the chosen tilings; waves from the kernel lab's estimateWave (registers not modelled)",
    timing: `wall clock record → syncGpu, median of ${args.reps} after ${args.warmup} warm-up`,
  },
});
console.log(`wrote ${file}`);
