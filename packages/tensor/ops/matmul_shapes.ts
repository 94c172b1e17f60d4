/**
 * The matrix products of a transformer's training step, for the tuner and
 * the kernel lab: every projection's x·Wᵀ (`nt`), its input gradient dY·W
 * (`nn`) and its weight gradient dYᵀ·X (`tn`), as `matmul` launches them.
 *
 * @example The products of mistral-small at 8 × 1024 tokens
 * ```ts
 * import { MISTRAL_SMALL_DIMS, transformerMatmulShapes } from "./matmul_shapes.ts";
 *
 * const shapes = transformerMatmulShapes(MISTRAL_SMALL_DIMS);
 * console.log(shapes.length); // 15: 5 distinct projections (q = o) × 3 layouts
 * ```
 *
 * @module
 */

import type { MatmulShape } from "./matmul_table.ts";

/** The dimensions that decide a decoder's matmul shapes. */
export interface TransformerDims {
  /** Tokens per step (batch × sequence length): M of every projection. */
  tokens: number;
  /** Model width. */
  hidden: number;
  /** Query width (heads × head dim). */
  qWidth: number;
  /** Key/value width (KV heads × head dim). */
  kvWidth: number;
  /** FFN width. */
  intermediate: number;
  /** Vocabulary (LM head). */
  vocab: number;
}

/**
 * `mistral-small` (bench/model_step.ts): hidden 768, 12 heads × 64, 4 KV
 * heads, FFN 2048, vocab 32768, at 8 × 1024 tokens.
 */
export const MISTRAL_SMALL_DIMS: TransformerDims = {
  tokens: 8192,
  hidden: 768,
  qWidth: 768,
  kvWidth: 256,
  intermediate: 2048,
  vocab: 32768,
};

/**
 * The Mistral-7B shape (`MISTRAL_7B_SHAPE` in packages/model): hidden 4096,
 * 32 heads × 128, 8 KV heads, FFN 14336, vocab 32768, at the 4096 tokens of
 * the LoRA step benchmark.
 */
export const MISTRAL_7B_DIMS: TransformerDims = {
  tokens: 4096,
  hidden: 4096,
  qWidth: 4096,
  kvWidth: 1024,
  intermediate: 14336,
  vocab: 32768,
};

/** Options of {@link transformerMatmulShapes}. */
export interface TransformerShapeOptions {
  /** Layouts to list (default all three). */
  layouts?: readonly ("nt" | "nn" | "tn")[];
  /** Weight dtype of the forward and input-gradient products (default f32). */
  weightType?: "f32" | "f16";
}

/**
 * The distinct products of one training step of a decoder with `dims`
 * (q, k/v, o, gate/up, down projections and the LM head), each in the
 * layouts asked for: `nt` x·Wᵀ (M = tokens, K = in, N = out), `nn`
 * dX = dY·W (M = tokens, K = out, N = in), `tn` dW = dYᵀ·X (M = out,
 * K = tokens, N = in). An f16 weight is the B operand of `nt` and `nn`; the
 * weight gradient `tn` has f32 operands.
 */
export function transformerMatmulShapes(
  dims: TransformerDims,
  options: TransformerShapeOptions = {},
): MatmulShape[] {
  const layouts = options.layouts ?? ["nt", "nn", "tn"];
  const bType = options.weightType ?? "f32";
  const T = dims.tokens, h = dims.hidden;
  // [in, out] of each projection.
  const linears: [number, number][] = [
    [h, dims.qWidth],
    [h, dims.kvWidth],
    [dims.qWidth, h],
    [h, dims.intermediate],
    [dims.intermediate, h],
    [h, dims.vocab],
  ];
  const seen = new Set<string>();
  const out: MatmulShape[] = [];
  const push = (s: MatmulShape) => {
    const key = JSON.stringify(s);
    if (!seen.has(key)) [seen.add(key), out.push(s)];
  };
  for (const layout of layouts) {
    for (const [inDim, outDim] of linears) {
      if (layout === "nt") {
        push({ M: T, K: inDim, N: outDim, transB: true, ...(bType === "f16" ? { bType } : {}) });
      } else if (layout === "nn") {
        push({ M: T, K: outDim, N: inDim, ...(bType === "f16" ? { bType } : {}) });
      } else {
        push({ M: outDim, K: T, N: inDim, transA: true });
      }
    }
  }
  return out;
}
