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
 * Times are wall clock from recording to `syncGpu()` (the kernels
 * submit their own command buffers), median of `--reps`.
 *
 * Usage: deno run -A bench/attention.ts [--full | --shape tiny|full] [--reps N] [--warmup N] [--docs 10,30,100]
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
import { attentionBackward, attentionForward, AttentionMask } from "@irforge/tensor/attention";
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
}, device.isCpuAdapter ? { reps: 2, warmup: 1 } : { reps: 10, warmup: 3 });
const env = environment(device.adapter, {
  cpuAdapter: device.isCpuAdapter,
  timestamps: device.hasTimestamps,
});
console.log(`attention · ${describeEnvironment(env)} · shape ${args.shape}`);

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

interface Measured {
  forwardMs: number;
  backwardMs: number;
}

/** Times forward and backward of one mask; all buffers made here, freed at the end. */
async function measure(meta: MaskMetadata): Promise<Measured> {
  const T = meta.length;
  const tensors: Tensor[] = [
    uniformTensor([1, heads, T, headDim], "f32", 1, 1),
    uniformTensor([1, kvHeads, T, headDim], "f32", 2, 1),
    uniformTensor([1, kvHeads, T, headDim], "f32", 3, 1),
    uniformTensor([1, heads, T, headDim], "f32", 4, 1), // out
    uniformTensor([1, heads, T], "f32", 5, 1), // lse
    uniformTensor([1, heads, T, headDim], "f32", 6, 1), // dOut
    uniformTensor([1, heads, T, headDim], "f32", 7, 1), // dQ
    uniformTensor([1, kvHeads, T, headDim], "f32", 8, 1), // dK
    uniformTensor([1, kvHeads, T, headDim], "f32", 9, 1), // dV
  ];
  const [q, k, v, out, lse, dOut, dQ, dK, dV] = tensors.map((t) => t.buffer) as GPUBuffer[];
  const mask = new AttentionMask(meta);
  await syncGpu();
  const shapeArgs = { heads, kvHeads, headDim, mask };
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
    };
    rows.push(row);
    console.log(
      `  ${layout} ${n} docs (T=${T}): forward ${m.forwardMs.toFixed(2)} ms, backward ${
        m.backwardMs.toFixed(2)
      } ms`,
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
      target: layout === "blockrank" ? "≤ 12×" : "≈ 26× (reference)",
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
    flops: "visible (query, key) pairs only; forward 4·D, backward 10·D per pair and query head",
    timing:
      `wall clock submit → onSubmittedWorkDone, median of ${args.reps} after ${args.warmup} warm-up`,
  },
});
console.log(`wrote ${file}`);
