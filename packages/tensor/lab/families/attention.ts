/**
 * Lab family `attention`: the fused attention kernels (`attention/`: WGSL
 * generators, float64 reference `attention/reference.ts`, tilings tested by
 * `attention/attention_test.ts`) on dense causal and BlockRank layouts of
 * 10 / 30 / 100 documents — the H200 sitting's workloads at GPU scale.
 *
 * @module
 */

import type { Device } from "../../device.ts";
import { AttentionMask } from "../../attention/attention_mask.ts";
import { attentionBackward } from "../../attention/attention_backward.ts";
import { attentionForward } from "../../attention/attention_forward.ts";
import {
  type BlockRankLayout,
  blockRankMask,
  causalMask,
  isVisible,
  type MaskMetadata,
} from "../../attention/mask_metadata.ts";
import { buildTileTable } from "../../attention/tile_table.ts";
import {
  type AttentionTiling,
  chooseTiling,
  workgroupBytes,
  workgroupThreads,
} from "../../attention/tiling.ts";
import { randn } from "../../random.ts";
import type { Tensor } from "../../tensor.ts";
import type { KernelCounts } from "../counts.ts";
import {
  type LabCase,
  type LabFamily,
  type LabScale,
  registerLabFamily,
  streamingCounts,
} from "../family.ts";

/** Head layout and document sizes per scale (GPU: 32 heads × 128, 8 KV heads, 160-token documents). */
export const ATTENTION_SHAPES = {
  cpu: { heads: 2, kvHeads: 1, headDim: 16, docLength: 12, instruction: 6, query: 6, docs: [2, 5] },
  gpu: {
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    docLength: 160,
    instruction: 32,
    query: 32,
    docs: [10, 30, 100],
  },
} as const;

/** Visible (query, key) pairs of a mask, all batch rows. */
export function countVisiblePairs(meta: MaskMetadata): number {
  let pairs = 0;
  for (let b = 0; b < meta.batch; b++) {
    for (let i = 0; i < meta.length; i++) {
      for (let j = 0; j <= i; j++) if (isVisible(meta, b, i, j)) pairs++;
    }
  }
  return pairs;
}

/** The problem of one case: head layout, mask and its visible pairs. */
export interface AttentionProblem {
  heads: number;
  kvHeads: number;
  headDim: number;
  meta: MaskMetadata;
  pairs: number;
}

/**
 * Design counts of today's scalar kernels: every score and every P·V term
 * reads both operands from workgroup memory (2 loads per FMA); each
 * workgroup stages its query tile once and K and V of each active key tile.
 */
export function attentionCounts(
  kernel: "forward" | "dkdv" | "dq",
  tiling: AttentionTiling,
  p: AttentionProblem,
): KernelCounts {
  const { heads, kvHeads, headDim: D, meta, pairs } = p;
  const B = meta.batch, T = meta.length;
  const table = buildTileTable(meta, tiling.queryTile, tiling.keyTile);
  const q = B * heads * T * D * 4, kv = B * kvHeads * T * D * 4;
  const tileBytes = tiling.keyTile * D * 4;
  const queryTileBytes = tiling.queryTile * D * 4;
  if (kernel === "forward") {
    return {
      flops: 4 * D * pairs * heads,
      minBytes: 2 * q + 2 * kv + B * heads * T * 4,
      globalReadBytes: q + heads * table.activeCount * 2 * tileBytes,
      globalWriteBytes: q + B * heads * T * 4,
      workgroupLoadsPerFma: 2,
      workgroups: table.numQueryTiles * heads * B,
      threadsPerWorkgroup: workgroupThreads(tiling),
      workgroupBytes: workgroupBytes("forward", D, tiling),
    };
  }
  // dK/dV recompute S and dP and accumulate dV and dK (8·D per pair);
  // dQ recomputes S and dP and accumulates dQ (6·D per pair).
  const perPair = kernel === "dkdv" ? 8 : 6;
  const staged = kernel === "dkdv"
    ? 2 * kv + heads * table.activeCount * 2 * queryTileBytes // K, V once; Q and dO per active tile
    : 2 * q + heads * table.activeCount * 2 * tileBytes; // Q, dO once; K and V per active tile
  return {
    flops: perPair * D * pairs * heads,
    minBytes: 2 * q + 2 * kv + B * heads * T * 8 + (kernel === "dkdv" ? 2 * kv : q),
    globalReadBytes: staged + B * heads * T * 8,
    globalWriteBytes: kernel === "dkdv" ? 2 * kv : q,
    workgroupLoadsPerFma: 2,
    workgroups: kernel === "dkdv"
      ? table.numKeyTiles * kvHeads * B
      : table.numQueryTiles * heads * B,
    threadsPerWorkgroup: workgroupThreads(tiling),
    workgroupBytes: workgroupBytes("backward", D, tiling),
  };
}

function problems(scale: LabScale): [string, AttentionProblem][] {
  const s = ATTENTION_SHAPES[scale];
  const out: [string, AttentionProblem][] = [];
  for (const layout of ["dense causal", "blockrank"] as const) {
    for (const n of s.docs) {
      const documents = Array<number>(n).fill(s.docLength);
      const T = s.instruction + n * s.docLength + s.query;
      const row: BlockRankLayout = { instruction: s.instruction, documents, query: s.query };
      const meta = layout === "blockrank"
        ? blockRankMask({ length: T, rows: [row] })
        : causalMask({ batch: 1, length: T });
      const p = { heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, meta, pairs: 0 };
      out.push([`${layout} ${n} docs (T=${T}) ${s.heads}×${s.headDim}/${s.kvHeads}kv`, p]);
    }
  }
  return out;
}

function prepare(p: AttentionProblem, backward: boolean) {
  const { heads, kvHeads, headDim, meta } = p;
  const T = meta.length;
  const tensors: Tensor[] = [
    randn([1, heads, T, headDim], { seed: 1 }),
    randn([1, kvHeads, T, headDim], { seed: 2 }),
    randn([1, kvHeads, T, headDim], { seed: 3 }),
    randn([1, heads, T, headDim], { seed: 4 }), // out
    randn([1, heads, T], { seed: 5 }), // lse
    randn([1, heads, T, headDim], { seed: 6 }), // dOut
    randn([1, heads, T, headDim], { seed: 7 }), // dQ
    randn([1, kvHeads, T, headDim], { seed: 8 }), // dK
    randn([1, kvHeads, T, headDim], { seed: 9 }), // dV
  ].map((t) => t.keep());
  const [q, k, v, out, lse, dOut, dQ, dK, dV] = tensors.map((t) => t.buffer) as GPUBuffer[];
  const mask = new AttentionMask(meta);
  const shape = { heads, kvHeads, headDim, mask };
  attentionForward({ ...shape, q: q!, k: k!, v: v!, out, lse }); // a valid lse for the backward
  return {
    record: backward
      ? () =>
        void attentionBackward({
          ...shape,
          q: q!,
          k: k!,
          v: v!,
          out: out!,
          lse: lse!,
          dOut: dOut!,
          dQ,
          dK,
          dV,
        })
      : () => void attentionForward({ ...shape, q: q!, k: k!, v: v!, out, lse }),
    dispose: () => {
      mask.destroy();
      for (const t of tensors) t.dispose();
    },
  };
}

function cases(scale: LabScale, device: Device): LabCase[] {
  const out: LabCase[] = [];
  for (const [name, problem] of problems(scale)) {
    problem.pairs = countVisiblePairs(problem.meta);
    const { headDim, heads, meta } = problem;
    const forward = chooseTiling(device.limits, "forward", headDim);
    const backward = chooseTiling(device.limits, "backward", headDim);
    const tilingName = (t: AttentionTiling) => `${t.queryTile}x${t.keyTile}x${t.threadsPerRow}`;
    out.push({
      kernel: "attention-forward",
      variant: tilingName(forward),
      problem: name,
      counts: attentionCounts("forward", forward, problem),
      prepare: () => prepare(problem, false),
    });
    const rows = meta.batch * heads * meta.length;
    out.push({
      kernel: "attention-row-stats",
      variant: "default",
      problem: name,
      counts: streamingCounts({
        flops: 2 * rows * headDim,
        readBytes: rows * (2 * headDim + 1) * 4,
        writeBytes: rows * 8,
        workgroups: Math.ceil(rows / 64),
        threads: 64,
      }),
      prepare: () => prepare(problem, true),
    });
    for (const kernel of ["dkdv", "dq"] as const) {
      out.push({
        kernel: `attention-${kernel}`,
        variant: tilingName(backward),
        problem: name,
        counts: attentionCounts(kernel, backward, problem),
        prepare: () => prepare(problem, true),
      });
    }
  }
  return out;
}

/** The registered family. */
export const ATTENTION_LAB: LabFamily = registerLabFamily({
  name: "attention",
  files: "attention/forward_kernel.ts, attention/backward_kernels.ts, attention/reference.ts, " +
    "attention/attention_test.ts",
  kernels: ["attention-forward", "attention-row-stats", "attention-dkdv", "attention-dq"],
  cases,
});
