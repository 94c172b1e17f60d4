/**
 * Memory of a QLoRA base model, computed from the storage layout the
 * kernels use ({@link nf4Layout}), not from a rule of thumb.
 *
 * @module
 */

import { expectedParameterNames, parameterShape } from "../causal_lm.ts";
import type { ModelConfig } from "../config.ts";
import { nf4Layout, type Nf4Options } from "./nf4_weight.ts";

/** Bytes of a QLoRA base model by part. */
export interface QloraMemory {
  /** NF4 codes of every projection. */
  nf4CodeBytes: number;
  /** Their block scales (plain or double-quantised). */
  nf4ScaleBytes: number;
  /** Embedding matrix (float). */
  embeddingBytes: number;
  /** LM head (float; 0 when tied). */
  lmHeadBytes: number;
  /** RMSNorm weights (always f32 in this engine). */
  normBytes: number;
  /** Everything. */
  totalBytes: number;
  /** Number of quantised weight elements. */
  quantizedElements: number;
}

/** The Mistral-7B-v0.3 shape (hidden 4096, 32 layers, 32/8 heads, FFN 14336, vocab 32768). */
export const MISTRAL_7B_SHAPE: ModelConfig = {
  modelType: "mistral",
  hiddenSize: 4096,
  intermediateSize: 14336,
  numLayers: 32,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 128,
  ropeTheta: 1_000_000,
  rmsNormEps: 1e-5,
  slidingWindow: null,
  tieWordEmbeddings: false,
  vocabSize: 32768,
  maxPositionEmbeddings: 32768,
  bosTokenId: 1,
  eosTokenIds: [2],
  padTokenId: null,
  dtype: "bfloat16",
};

/**
 * Bytes of `config`'s base model with NF4 projections and float embeddings
 * / LM head of `floatBytes` each element (2 for f16).
 */
export function qloraMemory(
  config: ModelConfig,
  options: Nf4Options & { floatBytes?: number } = {},
): QloraMemory {
  const floatBytes = options.floatBytes ?? 2;
  const m: QloraMemory = {
    nf4CodeBytes: 0,
    nf4ScaleBytes: 0,
    embeddingBytes: 0,
    lmHeadBytes: 0,
    normBytes: 0,
    totalBytes: 0,
    quantizedElements: 0,
  };
  for (const name of expectedParameterNames(config)) {
    const shape = parameterShape(config, name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith("_proj.weight")) {
      const layout = nf4Layout(n, options);
      m.nf4CodeBytes += layout.codeBytes;
      m.nf4ScaleBytes += layout.scaleBytes;
      m.quantizedElements += n;
    } else if (name === "model.embed_tokens.weight") m.embeddingBytes += n * floatBytes;
    else if (name === "lm_head.weight") m.lmHeadBytes += n * floatBytes;
    else m.normBytes += n * 4;
  }
  m.totalBytes = m.nf4CodeBytes + m.nf4ScaleBytes + m.embeddingBytes + m.lmHeadBytes + m.normBytes;
  return m;
}
