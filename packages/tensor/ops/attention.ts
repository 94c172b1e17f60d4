/**
 * Fused masked attention and selected-row attention scores as autograd ops,
 * over the flash-attention kernels of `../attention/`.
 *
 * Layouts: q `[B, Hq, T, D]`, k and v `[B, Hkv, T, D]` (contiguous),
 * output `[B, Hq, T, D]`. The mask is an {@link AttentionMask} (per-token
 * segment / block / kind metadata, see `attention/mask_metadata.ts`); it must
 * stay alive until the backward has run.
 *
 * Mixed precision: q, k, v may all be f16 (on a device with `shader-f16`);
 * the kernels widen them to f32, so scores, softmax statistics and every
 * accumulation are f32, like autocast's f16 operands with f32 accumulation.
 * The output is f32 unless `outDtype: "f16"` is asked for; gradients come
 * back in the dtype of their inputs (f16 for f16 inputs), so a `cast` from
 * f32 masters carries them back to f32.
 *
 * The kernels record into the runtime's command encoder like every other op,
 * so queue order equals program order.
 *
 * @module
 */

import {
  attentionBackward,
  attentionForward,
  type AttentionMask,
  attentionRowScores,
  attentionRowScoresBackward,
} from "../attention/mod.ts";
import { defineOp } from "../registry.ts";
import { Tensor, zeros } from "../tensor.ts";
import { cast } from "./elementwise.ts";

/** Storage dtypes the attention ops take. */
export type AttentionDtype = "f32" | "f16";

interface AttentionAttrs {
  mask: AttentionMask;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  /** q, k, v (and their gradients). */
  dtype: AttentionDtype;
}

interface FusedAttrs extends AttentionAttrs {
  /** The output (and the gradient the backward takes). */
  outDtype: AttentionDtype;
}

function shapeOf(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask, op: string) {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`${op}: q, k, v must be [B, H, T, D]; got ${q}, ${k}, ${v}`);
  }
  for (const t of [q, k, v]) {
    if (t.dtype !== "f32" && t.dtype !== "f16") {
      throw new Error(`${op}: inputs must be f32 or f16, got ${t}`);
    }
    if (t.dtype !== q.dtype) {
      throw new Error(`${op}: q, k, v must share a dtype (cast them), got ${q}, ${k}, ${v}`);
    }
  }
  const [B, heads, T, D] = q.shape as [number, number, number, number];
  const kvHeads = k.shape[1]!;
  if (
    k.shape[0] !== B || k.shape[2] !== T || k.shape[3] !== D || v.shape.join() !== k.shape.join()
  ) {
    throw new Error(`${op}: k ${k} and v ${v} do not match q ${q}`);
  }
  if (mask.meta.batch !== B || mask.meta.length !== T) {
    throw new Error(
      `${op}: mask is for batch ${mask.meta.batch} × length ${mask.meta.length}, inputs are ${B} × ${T}`,
    );
  }
  return { heads, kvHeads, headDim: D, dtype: q.dtype as AttentionDtype };
}

/** `dy` in `dtype` (the gradient of an output may arrive in another float dtype). */
function gradAs(dy: Tensor, dtype: AttentionDtype): Tensor {
  return dy.dtype === dtype ? dy : cast(dy, dtype);
}

const attentionOp = defineOp<FusedAttrs>({
  name: "attention",
  forward: ([q, k, v], a) => {
    const out = Tensor.empty(q!.shape, a.outDtype, "attention out");
    const [B, H, T] = q!.shape as [number, number, number];
    const lse = Tensor.empty([B, H, T], "f32", "attention lse");
    attentionForward({
      q: q!.buffer,
      k: k!.buffer,
      v: v!.buffer,
      out: out.buffer,
      lse: lse.buffer,
      mask: a.mask,
      heads: a.heads,
      kvHeads: a.kvHeads,
      headDim: a.headDim,
      scale: a.scale,
      dtype: a.dtype,
      outDtype: a.outDtype,
    });
    return { output: out, saved: [q!, k!, v!, out, lse] };
  },
  backward: (dy, { saved, attrs: a }) => {
    const [q, k, v, out, lse] = saved as [Tensor, Tensor, Tensor, Tensor, Tensor];
    const dQ = Tensor.empty(q.shape, a.dtype, "attention dQ");
    const dK = Tensor.empty(k.shape, a.dtype, "attention dK");
    const dV = Tensor.empty(v.shape, a.dtype, "attention dV");
    const dOut = gradAs(dy, a.outDtype);
    attentionBackward({
      q: q.buffer,
      k: k.buffer,
      v: v.buffer,
      out: out.buffer,
      lse: lse.buffer,
      dOut: dOut.buffer,
      dQ: dQ.buffer,
      dK: dK.buffer,
      dV: dV.buffer,
      mask: a.mask,
      heads: a.heads,
      kvHeads: a.kvHeads,
      headDim: a.headDim,
      scale: a.scale,
      dtype: a.dtype,
      outDtype: a.outDtype,
    });
    return [dQ, dK, dV];
  },
});

/**
 * softmax(scale·q·kᵀ + mask)·v with grouped-query heads, fused (see module
 * docs for layouts). Rows that see no key (pads) give zeros. q, k, v are all
 * f32 or all f16 (f32 arithmetic either way); the output is `outDtype`
 * (default f32).
 *
 * @example f16 operands, f32 output (mixed precision)
 * ```ts ignore
 * const half = (t: Tensor) => cast(t, "f16");
 * const out = attention(half(q), half(k), half(v), mask); // f32 [B, Hq, T, D]
 * ```
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: AttentionMask,
  options: { scale?: number; outDtype?: AttentionDtype } = {},
): Tensor {
  const shape = shapeOf(q, k, v, mask, "attention");
  return attentionOp([q, k, v], {
    mask,
    ...shape,
    scale: options.scale ?? 1 / Math.sqrt(shape.headDim),
    outDtype: options.outDtype ?? "f32",
  });
}

interface RowScoreAttrs extends AttentionAttrs {
  rows: number[][];
}

const rowScoresOp = defineOp<RowScoreAttrs>({
  name: "attention_row_scores",
  forward: ([q, k], a) => {
    const [B, H, T] = q!.shape as [number, number, number];
    const scores = Tensor.empty([B, H, a.rows[0]!.length, T], "f32", "attention row scores");
    attentionRowScores({
      q: q!.buffer,
      k: k!.buffer,
      scores: scores.buffer,
      rows: a.rows,
      mask: a.mask,
      heads: a.heads,
      kvHeads: a.kvHeads,
      headDim: a.headDim,
      scale: a.scale,
      dtype: a.dtype,
    });
    return { output: scores, saved: [q!, k!] };
  },
  backward: (dy, { saved, attrs: a }) => {
    const [q, k] = saved as [Tensor, Tensor];
    // The kernel accumulates into dQ/dK, so start from zeros.
    const dQ = zeros(q.shape, a.dtype);
    const dK = zeros(k.shape, a.dtype);
    const dScores = gradAs(dy, "f32");
    attentionRowScoresBackward({
      q: q.buffer,
      k: k.buffer,
      dScores: dScores.buffer,
      dQ: dQ.buffer,
      dK: dK.buffer,
      rows: a.rows,
      mask: a.mask,
      heads: a.heads,
      kvHeads: a.kvHeads,
      headDim: a.headDim,
      scale: a.scale,
      dtype: a.dtype,
    });
    return [dQ, dK];
  },
});

/**
 * Scaled pre-softmax scores of chosen query rows against every key:
 * `[B, Hq, R, T]` (f32), masked entries −inf. `rows[b]` lists R distinct token
 * indices of batch row b (−1 = unused slot). Differentiable in q and k,
 * which are both f32 or both f16.
 */
export function attentionScoresForRows(
  q: Tensor,
  k: Tensor,
  mask: AttentionMask,
  rows: number[][],
  options: { scale?: number } = {},
): Tensor {
  const shape = shapeOf(q, k, k, mask, "attentionScoresForRows");
  return rowScoresOp([q, k], {
    mask,
    rows,
    ...shape,
    scale: options.scale ?? 1 / Math.sqrt(shape.headDim),
  });
}
