/**
 * Float64 CPU reference of masked attention and of selected-row scores, dense
 * and O(T²): the yardstick for the GPU kernels. It re-derives the mask from the
 * metadata with its own copy of the rule, so a bug in the GPU path or the tile
 * table cannot hide behind shared code.
 *
 * Layouts (row-major): q `[B, Hq, T, D]`, k and v `[B, Hkv, T, D]`,
 * out `[B, Hq, T, D]`, lse `[B, Hq, T]`; query head h reads kv head
 * `floor(h / (Hq / Hkv))`.
 *
 * @module
 */

import type { MaskMetadata } from "./mask_metadata.ts";

/** Shapes shared by the reference functions. */
export interface ReferenceShape {
  /** Query heads (Hq). */
  heads: number;
  /** Key/value heads (Hkv); must divide `heads`. */
  kvHeads: number;
  /** Head dimension (D). */
  headDim: number;
  /** Score scale; default 1/√D. */
  scale?: number;
}

/** Host numbers the reference reads: any array-like of numbers (f32 or f64). */
export type Floats = ArrayLike<number>;

/** Dense visibility `[B, T, T]` (1 = visible), straight from the rule. */
export function referenceDenseMask(meta: MaskMetadata): Uint8Array {
  const { batch, length: t } = meta;
  const dense = new Uint8Array(batch * t * t);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < t; i++) {
      for (let j = 0; j <= i; j++) {
        const qi = b * t + i, kj = b * t + j;
        const sameSegment = meta.segment[qi]! !== -1 && meta.segment[qi] === meta.segment[kj];
        const blockRule = meta.kind[qi] === 2 || meta.kind[kj] === 0 ||
          meta.block[qi] === meta.block[kj];
        const inWindow = meta.window === 0 || i - j < meta.window;
        if (sameSegment && blockRule && inWindow) dense[(b * t + i) * t + j] = 1;
      }
    }
  }
  return dense;
}

function checkShape(shape: ReferenceShape): { group: number; scale: number } {
  if (shape.heads % shape.kvHeads !== 0) {
    throw new RangeError(`kvHeads ${shape.kvHeads} must divide heads ${shape.heads}`);
  }
  return { group: shape.heads / shape.kvHeads, scale: shape.scale ?? 1 / Math.sqrt(shape.headDim) };
}

/** Scaled scores of one (b, h) as a dense `[T, T]` matrix, masked entries −∞. */
function scores(
  q: Floats,
  k: Floats,
  meta: MaskMetadata,
  dense: Uint8Array,
  shape: ReferenceShape,
  b: number,
  h: number,
): Float64Array {
  const { group, scale } = checkShape(shape);
  const { length: t } = meta;
  const d = shape.headDim;
  const qBase = (b * shape.heads + h) * t * d;
  const kBase = (b * shape.kvHeads + Math.floor(h / group)) * t * d;
  const s = new Float64Array(t * t).fill(-Infinity);
  for (let i = 0; i < t; i++) {
    for (let j = 0; j < t; j++) {
      if (!dense[(b * t + i) * t + j]) continue;
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[qBase + i * d + c]! * k[kBase + j * d + c]!;
      s[i * t + j] = scale * dot;
    }
  }
  return s;
}

/** Softmax of each row of dense scores; rows with nothing visible give zeros and lse 0. */
function softmaxRows(s: Float64Array, t: number): { p: Float64Array; lse: Float64Array } {
  const p = new Float64Array(t * t);
  const lse = new Float64Array(t);
  for (let i = 0; i < t; i++) {
    let max = -Infinity;
    for (let j = 0; j < t; j++) max = Math.max(max, s[i * t + j]!);
    if (max === -Infinity) continue;
    let sum = 0;
    for (let j = 0; j < t; j++) sum += Math.exp(s[i * t + j]! - max);
    lse[i] = max + Math.log(sum);
    for (let j = 0; j < t; j++) p[i * t + j] = Math.exp(s[i * t + j]! - lse[i]!);
  }
  return { p, lse };
}

/** Inputs of the attention reference. */
export interface ReferenceAttentionInputs extends ReferenceShape {
  /** `[B, Hq, T, D]`. */
  q: Floats;
  /** `[B, Hkv, T, D]`. */
  k: Floats;
  /** `[B, Hkv, T, D]`. */
  v: Floats;
  /** Mask metadata; supplies B and T. */
  meta: MaskMetadata;
}

/**
 * out = softmax(scale·q·kᵀ + mask)·v and lse = logsumexp of each row's visible
 * scores. Rows that see no key (pads) give out 0 and lse 0.
 */
export function referenceAttentionForward(
  inputs: ReferenceAttentionInputs,
): { out: Float64Array; lse: Float64Array } {
  const { meta, heads, headDim: d } = inputs;
  const { group } = checkShape(inputs);
  const { batch, length: t } = meta;
  const dense = referenceDenseMask(meta);
  const out = new Float64Array(batch * heads * t * d);
  const lse = new Float64Array(batch * heads * t);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const { p, lse: rowLse } = softmaxRows(
        scores(inputs.q, inputs.k, meta, dense, inputs, b, h),
        t,
      );
      lse.set(rowLse, (b * heads + h) * t);
      const vBase = (b * inputs.kvHeads + Math.floor(h / group)) * t * d;
      const oBase = (b * heads + h) * t * d;
      for (let i = 0; i < t; i++) {
        for (let j = 0; j < t; j++) {
          const pij = p[i * t + j]!;
          if (pij === 0) continue;
          for (let c = 0; c < d; c++) out[oBase + i * d + c]! += pij * inputs.v[vBase + j * d + c]!;
        }
      }
    }
  }
  return { out, lse };
}

/**
 * Gradients of `sum(out ⊙ dOut)` with respect to q, k and v, by the textbook
 * dense chain rule: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 * dQ = scale·dS·K, dK = scale·dSᵀ·Q (dK, dV summed over each kv group).
 */
export function referenceAttentionBackward(
  inputs: ReferenceAttentionInputs & { dOut: Floats },
): { dQ: Float64Array; dK: Float64Array; dV: Float64Array } {
  const { meta, heads, kvHeads, headDim: d } = inputs;
  const { group, scale } = checkShape(inputs);
  const { batch, length: t } = meta;
  const dense = referenceDenseMask(meta);
  const dQ = new Float64Array(batch * heads * t * d);
  const dK = new Float64Array(batch * kvHeads * t * d);
  const dV = new Float64Array(batch * kvHeads * t * d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const { p } = softmaxRows(scores(inputs.q, inputs.k, meta, dense, inputs, b, h), t);
      const qBase = (b * heads + h) * t * d;
      const kvBase = (b * kvHeads + Math.floor(h / group)) * t * d;
      const dP = new Float64Array(t * t);
      for (let i = 0; i < t; i++) {
        for (let j = 0; j < t; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) {
            dot += inputs.dOut[qBase + i * d + c]! * inputs.v[kvBase + j * d + c]!;
          }
          dP[i * t + j] = dot;
        }
      }
      for (let i = 0; i < t; i++) {
        let rowDot = 0;
        for (let j = 0; j < t; j++) rowDot += p[i * t + j]! * dP[i * t + j]!;
        for (let j = 0; j < t; j++) {
          const pij = p[i * t + j]!;
          const dS = pij * (dP[i * t + j]! - rowDot);
          for (let c = 0; c < d; c++) {
            dV[kvBase + j * d + c]! += pij * inputs.dOut[qBase + i * d + c]!;
            dQ[qBase + i * d + c]! += scale * dS * inputs.k[kvBase + j * d + c]!;
            dK[kvBase + j * d + c]! += scale * dS * inputs.q[qBase + i * d + c]!;
          }
        }
      }
    }
  }
  return { dQ, dK, dV };
}

/** Inputs of the selected-row score reference. */
export interface ReferenceRowScoresInputs extends ReferenceShape {
  /** `[B, Hq, T, D]`. */
  q: Floats;
  /** `[B, Hkv, T, D]`. */
  k: Floats;
  /** Mask metadata; supplies B and T. */
  meta: MaskMetadata;
  /** `[B, R]` query row indices; −1 = unused slot (its scores are all −∞). */
  rows: ArrayLike<number>;
  /** R. */
  rowsPerBatch: number;
}

/** S `[B, Hq, R, T]` = scale·q[rows]·kᵀ, masked entries −∞. */
export function referenceRowScores(inputs: ReferenceRowScoresInputs): Float64Array {
  const { meta, heads, rowsPerBatch: r } = inputs;
  const { batch, length: t } = meta;
  const dense = referenceDenseMask(meta);
  const out = new Float64Array(batch * heads * r * t).fill(-Infinity);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const s = scores(inputs.q, inputs.k, meta, dense, inputs, b, h);
      for (let n = 0; n < r; n++) {
        const row = inputs.rows[b * r + n]!;
        if (row < 0) continue;
        out.set(s.subarray(row * t, row * t + t), ((b * heads + h) * r + n) * t);
      }
    }
  }
  return out;
}

/** Gradients of `sum(S ⊙ dS)` over visible entries: dQ `[B, Hq, T, D]` and dK `[B, Hkv, T, D]`. */
export function referenceRowScoresBackward(
  inputs: ReferenceRowScoresInputs & { dScores: Floats },
): { dQ: Float64Array; dK: Float64Array } {
  const { meta, heads, kvHeads, headDim: d, rowsPerBatch: r } = inputs;
  const { group, scale } = checkShape(inputs);
  const { batch, length: t } = meta;
  const dense = referenceDenseMask(meta);
  const dQ = new Float64Array(batch * heads * t * d);
  const dK = new Float64Array(batch * kvHeads * t * d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const qBase = (b * heads + h) * t * d;
      const kBase = (b * kvHeads + Math.floor(h / group)) * t * d;
      for (let n = 0; n < r; n++) {
        const i = inputs.rows[b * r + n]!;
        if (i < 0) continue;
        for (let j = 0; j < t; j++) {
          if (!dense[(b * t + i) * t + j]) continue;
          const g = scale * inputs.dScores[((b * heads + h) * r + n) * t + j]!;
          for (let c = 0; c < d; c++) {
            dQ[qBase + i * d + c]! += g * inputs.k[kBase + j * d + c]!;
            dK[kBase + j * d + c]! += g * inputs.q[qBase + i * d + c]!;
          }
        }
      }
    }
  }
  return { dQ, dK };
}
