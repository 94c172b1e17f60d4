/**
 * Lab family `attention`: the fused attention kernels (`attention/`: WGSL
 * generators, float64 reference `attention/reference.ts`, tilings tested by
 * `attention/attention_test.ts`, design counts `attention/counts.ts`) on
 * dense causal and BlockRank layouts of 10 / 30 / 100 documents — the H200
 * sitting's workloads at GPU scale — forward, backward and the split dK/dV
 * path, in f32 and (where the adapter has `shader-f16`) with f16 q, k, v as
 * under `training.fp16` (f32 out). Each case's counts follow the row-reduction
 * path the device takes (subgroups where present, see `attention/subgroups.ts`).
 *
 * @module
 */

import type { Device } from "../../device.ts";
import { AttentionMask } from "../../attention/attention_mask.ts";
import { attentionBackward } from "../../attention/attention_backward.ts";
import { attentionForward } from "../../attention/attention_forward.ts";
import { attentionCounts, type AttentionVariant } from "../../attention/counts.ts";
import { attentionSubgroups, flatRowLanes } from "../../attention/subgroups.ts";
import {
  type BlockRankLayout,
  blockRankMask,
  causalMask,
  isVisible,
  type MaskMetadata,
} from "../../attention/mask_metadata.ts";
import { buildTileTable } from "../../attention/tile_table.ts";
import { type AttentionTiling, chooseTiling, kernelLayout } from "../../attention/tiling.ts";
import { cast } from "../../ops/elementwise.ts";
import { randn } from "../../random.ts";
import type { Tensor } from "../../tensor.ts";
import { type LabCase, type LabFamily, type LabScale, registerLabFamily } from "../family.ts";

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
/** The problem of one case: head layout, mask and its visible pairs. */
export interface AttentionLabProblem {
  heads: number;
  kvHeads: number;
  headDim: number;
  meta: MaskMetadata;
  pairs: number;
}

function problems(scale: LabScale): [string, AttentionLabProblem][] {
  const s = ATTENTION_SHAPES[scale];
  const out: [string, AttentionLabProblem][] = [];
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

function prepare(
  p: AttentionLabProblem,
  backward: boolean,
  keySplits: number | undefined,
  dtype: "f32" | "f16",
) {
  const { heads, kvHeads, headDim, meta } = p;
  const T = meta.length;
  // q, k, v, dQ, dK, dV in `dtype`; out, lse, dOut f32 (the model's fp16 path).
  const asOperand = (t: Tensor) => dtype === "f16" ? cast(t, "f16") : t;
  const operand = new Set([0, 1, 2, 6, 7, 8]);
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
  ].map((t, n) => (operand.has(n) ? asOperand(t) : t).keep());
  const [q, k, v, out, lse, dOut, dQ, dK, dV] = tensors.map((t) => t.buffer) as GPUBuffer[];
  const mask = new AttentionMask(meta);
  const shape = { heads, kvHeads, headDim, mask, dtype };
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
          keySplits,
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
  const tilingName = (t: AttentionTiling) =>
    `${t.queryTile}x${t.keyTile}x${t.threadsPerRow}` +
    (t.rowsPerThread ? ` r${t.rowsPerThread}` : "");
  for (const [name, problem] of problems(scale)) {
    problem.pairs = countVisiblePairs(problem.meta);
    const { headDim, heads, kvHeads, meta } = problem;
    const forward = chooseTiling(device.limits, "forward", headDim);
    const backward = chooseTiling(device.limits, "backward", headDim);
    const counted = (tiling: AttentionTiling) => ({
      batch: meta.batch,
      heads,
      kvHeads,
      seqLen: meta.length,
      headDim,
      visiblePairs: problem.pairs,
      activeTiles: buildTileTable(meta, tiling.queryTile, tiling.keyTile).activeCount,
    });
    const passes: [string, "forward" | "backward", AttentionTiling, number | undefined][] = [
      [tilingName(forward), "forward", forward, undefined],
      [tilingName(backward), "backward", backward, undefined],
      // The split dK/dV path (an ordered second pass sums the partials) on the same problem.
      [`${tilingName(backward)} split 2`, "backward", backward, 2],
    ];
    const layout = kernelLayout("forward", headDim, forward);
    const subgroups = attentionSubgroups(layout.threads, layout.threadsPerRow);
    const lanes = flatRowLanes();
    const dtypes = device.hasF16 ? ["f32", "f16"] as const : ["f32"] as const;
    for (const dtype of dtypes) {
      for (const [variant, pass, tiling, splits] of passes) {
        // The forward's subgroup choice, and the row-stats lanes, as the dispatch makes them.
        const countedVariant: AttentionVariant = {
          dtype,
          subgroups: pass === "forward" ? subgroups : lanes > 1,
          flatLanes: lanes,
        };
        const counts = attentionCounts(pass, counted(tiling), tiling, splits ?? 1, countedVariant);
        for (const k of counts.kernels) {
          if (splits !== undefined && !k.kernel.startsWith("attention-dkdv")) continue;
          const sg = (k.kernel === "attention-forward" && subgroups) ||
              (k.kernel === "attention-row-stats" && lanes > 1)
            ? " sg"
            : "";
          out.push({
            kernel: k.kernel,
            variant: `${variant}${dtype === "f16" ? " f16" : ""}${sg}`,
            problem: name,
            counts: k.counts,
            prepare: () => prepare(problem, pass === "backward", splits, dtype),
          });
        }
      }
    }
  }
  return out;
}

/** The registered family. */
export const ATTENTION_LAB: LabFamily = registerLabFamily({
  name: "attention",
  files: "attention/forward_kernel.ts, attention/backward_kernels.ts, attention/counts.ts, " +
    "attention/reference.ts, attention/attention_test.ts",
  kernels: [
    "attention-forward",
    "attention-row-stats",
    "attention-dkdv",
    "attention-dkdv-split-sum",
    "attention-dq",
  ],
  cases,
});
