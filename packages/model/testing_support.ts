/**
 * Test support for comparing the GPU {@link CausalLM} with the float64 CPU
 * reference (`reference_cpu.ts`) on tiny random models: config building,
 * f32-exact random weights, one forward + backward on the GPU, real-row
 * extraction, and gradient checks against central finite differences of the
 * reference loss.
 *
 * Not exported from the package: tests import it by relative path.
 *
 * @module
 */

import { type AdamW, backward, clipGradNorm, Tensor, tidy } from "@irforge/tensor";
import { GRAD_TOL } from "@irforge/tensor/testing";
import { CausalLM, expectedParameterNames } from "./causal_lm.ts";
import type { ModelConfig } from "./config.ts";
import { causalLMFromArrays } from "./load.ts";
import { causalInputs, disposeInputs, type ModelInputs, uploadInputs } from "./model_inputs.ts";
import {
  randomReferenceWeights,
  referenceForward,
  referenceLoss,
  type ReferenceWeights,
} from "./reference_cpu.ts";

/** Label value the loss ignores (HF's `ignore_index`). */
export const IGNORE_LABEL = -100;

/**
 * A tiny Mistral config (hidden 32, 2 layers, 4 heads of 8, 2 KV heads,
 * vocab 96, no sliding window) with `overrides` applied.
 */
export function tinyConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    modelType: "mistral",
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
    slidingWindow: null,
    tieWordEmbeddings: false,
    vocabSize: 96,
    maxPositionEmbeddings: 64,
    bosTokenId: 1,
    eosTokenIds: [2],
    padTokenId: null,
    dtype: null,
    ...overrides,
  };
}

/**
 * Seeded random reference weights rounded to f32, so the GPU (which stores
 * f32) and the float64 reference compute the same function.
 */
export function f32ReferenceWeights(config: ModelConfig, seed: number): ReferenceWeights {
  const weights = randomReferenceWeights(config, seed);
  for (const [name, w] of weights) weights.set(name, Float64Array.from(Float32Array.from(w)));
  return weights;
}

/** One batch through one model: what both the GPU and the reference run. */
export interface ModelCase {
  config: ModelConfig;
  /** f32-exact weights by HF name. */
  weights: ReferenceWeights;
  /** Token ids, rows of equal length. */
  ids: number[][];
  /** HF attention_mask (1 token, 0 pad); all ones when absent. */
  attentionMask?: number[][];
  /**
   * Explicit position ids. Absent: the GPU side uses `causalInputs` (positions
   * 0..T−1 in every row, HF's default) and the reference its own default.
   */
  positionIds?: number[][];
  /** Labels (−100 ignored); default {@link labelsFor}(ids, attentionMask). */
  labels?: number[][];
}

/** Labels equal to the ids, with −100 wherever the attention mask is 0. */
export function labelsFor(ids: number[][], attentionMask?: number[][]): number[][] {
  return ids.map((row, b) =>
    row.map((id, t) => (attentionMask?.[b]?.[t] ?? 1) === 0 ? IGNORE_LABEL : id)
  );
}

/** What one GPU forward + backward produced, read back to the host. */
export interface GpuRun {
  /** Logits `[B, T, V]`. */
  logits: Float32Array;
  /** Mean causal-LM loss. */
  loss: number;
  /** Gradient of the loss for every parameter, by HF name. */
  grads: Map<string, Float32Array>;
  /** Position ids the inputs carried, `[B, T]` flat. */
  positionIds: Int32Array;
}

/** The GPU inputs of a case: `causalInputs` unless explicit positions are given. */
export function caseInputs(c: ModelCase): ModelInputs {
  const window = c.config.slidingWindow;
  if (!c.positionIds) return causalInputs(c.ids, { attentionMask: c.attentionMask, window });
  const batch = c.ids.length, length = c.ids[0]!.length;
  return uploadInputs({
    batch,
    length,
    inputIds: Int32Array.from(c.ids.flat()),
    positionIds: Int32Array.from(c.positionIds.flat()),
    attentionMask: c.attentionMask ? Int32Array.from(c.attentionMask.flat()) : undefined,
  }, window);
}

/** Builds the model of `c` on the GPU, runs forward, the LM loss and backward, reads back. */
export async function runOnGpu(c: ModelCase): Promise<GpuRun> {
  const batch = c.ids.length, length = c.ids[0]!.length;
  const labels = c.labels ?? labelsFor(c.ids, c.attentionMask);
  const model = causalLMFromArrays(c.config, c.weights);
  const inputs = caseInputs(c);
  const targets = Tensor.fromArray(
    CausalLM.shiftedTargets(Int32Array.from(labels.flat()), batch, length),
    [batch * length],
    "i32",
  ).keep();
  let logits: Tensor | undefined, loss: Tensor | undefined;
  try {
    model.setTrainable(true);
    logits = model.forward(inputs).logits!;
    loss = CausalLM.lmLoss(logits, targets);
    backward(loss);
    const grads = new Map<string, Float32Array>();
    for (const [name, p] of model.params) {
      if (!p.grad) throw new Error(`GPU run: parameter ${name} got no gradient`);
      grads.set(name, (await p.grad.toArray()) as Float32Array);
    }
    return {
      logits: (await logits.toArray()) as Float32Array,
      loss: await loss.item(),
      grads,
      positionIds: (await inputs.positionIds.toArray()) as Int32Array,
    };
  } finally {
    logits?.dispose();
    loss?.dispose();
    targets.dispose();
    disposeInputs(inputs);
    model.dispose();
  }
}

/** Reference logits `[B, T, V]` of a case (float64). */
export function referenceLogits(c: ModelCase, weights: ReferenceWeights = c.weights): Float64Array {
  return referenceForward(c.config, weights, {
    inputIds: c.ids,
    attentionMask: c.attentionMask,
    positionIds: c.positionIds,
  });
}

/** Reference mean causal-LM loss of a case (float64). */
export function referenceCaseLoss(c: ModelCase, weights: ReferenceWeights = c.weights): number {
  const labels = c.labels ?? labelsFor(c.ids, c.attentionMask);
  return referenceLoss(referenceLogits(c, weights), labels, c.config.vocabSize);
}

/**
 * The logit rows `[V]` of real tokens (attention mask 1), concatenated in
 * batch-then-time order. Pad rows are left out: HF's eager attention makes a
 * pad query that sees no key attend uniformly, the reference gives it zero
 * attention output, and no loss ever reads it.
 */
export function realRows(
  logits: ArrayLike<number>,
  attentionMask: number[][] | undefined,
  batch: number,
  length: number,
  vocab: number,
): Float64Array {
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      if ((attentionMask?.[b]?.[t] ?? 1) === 0) continue;
      const off = (b * length + t) * vocab;
      for (let v = 0; v < vocab; v++) out.push(logits[off + v]!);
    }
  }
  return Float64Array.from(out);
}

/** A small seeded PRNG (mulberry32) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Result of the finite-difference check of one parameter. */
export interface GradCheck {
  /** HF parameter name. */
  name: string;
  /** Flat indices checked. */
  entries: number[];
  /** GPU gradient at those entries. */
  gpu: number[];
  /** Central finite differences of the float64 reference loss at those entries. */
  numeric: number[];
  /** max|GPU grad| over the whole tensor: the scale errors are measured against. */
  scale: number;
  /** max over entries of |gpu − numeric| / scale. */
  relative: number;
}

/** Options of {@link checkGradients}. */
export interface GradCheckOptions {
  /** Random entries per parameter (default 6). */
  entries?: number;
  /** Finite-difference step (default 1e-4; float64 loss). */
  h?: number;
  /** Seed of the entry choice. */
  seed?: number;
  /** Parameters to check (default: every parameter of the config). */
  names?: string[];
  /** Further entries to check, by parameter name (e.g. rows of tokens in the batch). */
  extraEntries?: Map<string, number[]>;
}

/**
 * Compares the GPU gradients of `c` with central finite differences of the
 * float64 reference loss. For each parameter it checks `entries` random
 * entries, the given extra entries, and the entry where the GPU gradient is
 * largest (so the scale itself is verified: a spurious huge GPU value would
 * be checked and fail). Errors are relative to the GPU tensor's max-abs.
 */
export function checkGradients(
  c: ModelCase,
  gpuGrads: Map<string, Float32Array>,
  options: GradCheckOptions = {},
): GradCheck[] {
  const h = options.h ?? 1e-4;
  const random = seededRandom(options.seed ?? 7);
  const names = options.names ?? expectedParameterNames(c.config);
  // Perturb a private copy so a failed check cannot leave the case's weights altered.
  const weights: ReferenceWeights = new Map(
    [...c.weights].map(([name, w]) => [name, Float64Array.from(w)]),
  );
  const results: GradCheck[] = [];
  for (const name of names) {
    const w = weights.get(name);
    const g = gpuGrads.get(name);
    if (!w || !g) throw new Error(`gradient check: no weight or GPU gradient for ${name}`);
    let scale = 0, argmax = 0;
    for (let i = 0; i < g.length; i++) {
      if (Math.abs(g[i]!) > scale) [scale, argmax] = [Math.abs(g[i]!), i];
    }
    const chosen = new Set<number>([argmax, ...(options.extraEntries?.get(name) ?? [])]);
    const wanted = chosen.size + (options.entries ?? 6);
    while (chosen.size < Math.min(wanted, w.length)) chosen.add(Math.floor(random() * w.length));
    const entries = [...chosen];
    const gpu: number[] = [], numeric: number[] = [];
    let worst = 0;
    for (const i of entries) {
      const keep = w[i]!;
      w[i] = keep + h;
      const up = referenceCaseLoss(c, weights);
      w[i] = keep - h;
      const down = referenceCaseLoss(c, weights);
      w[i] = keep;
      const fd = (up - down) / (2 * h);
      gpu.push(g[i]!);
      numeric.push(fd);
      const diff = Math.abs(g[i]! - fd);
      worst = Math.max(worst, Number.isNaN(diff) ? Infinity : diff);
    }
    results.push({
      name,
      entries,
      gpu,
      numeric,
      scale,
      relative: worst === 0 ? 0 : worst / Math.max(scale, 1e-30),
    });
  }
  return results;
}

/** Throws unless every check is within `tol` (default `GRAD_TOL`), naming the worst entry. */
export function assertGradChecks(checks: GradCheck[], tol = GRAD_TOL, what = "gradients"): void {
  const bad = checks.filter((c) => !(c.relative <= tol));
  if (bad.length === 0) return;
  const lines = bad.map((c) => {
    let k = 0;
    c.entries.forEach((_, j) => {
      if (!(Math.abs(c.gpu[j]! - c.numeric[j]!) <= Math.abs(c.gpu[k]! - c.numeric[k]!))) k = j;
    });
    return `${c.name}: relative ${c.relative.toExponential(3)} > ${tol} at entry ${
      c.entries[k]
    } (GPU ${c.gpu[k]}, finite difference ${c.numeric[k]}, scale ${c.scale.toExponential(3)})`;
  });
  throw new Error(`${what}:\n  ${lines.join("\n  ")}`);
}

/** Flat indices of every embedding entry in the rows of `tokens` (`[V, hidden]` layout). */
export function embeddingRowEntries(tokens: number[], hidden: number): number[] {
  return tokens.flatMap((t) => Array.from({ length: hidden }, (_, i) => t * hidden + i));
}

/**
 * One training step as the trainer runs it, with fresh inputs (and mask)
 * built from `ids`: forward, LM loss, backward, clipping at 1, AdamW,
 * zeroed gradients. Returns the loss (the caller owns it).
 */
export function tinyTrainingStep(
  model: CausalLM,
  optimizer: AdamW,
  ids: number[][],
  attentionMask?: number[][],
): Tensor {
  const inputs = causalInputs(ids, { attentionMask });
  const targets = CausalLM.shiftedTargets(Int32Array.from(ids.flat()), ids.length, ids[0]!.length);
  const loss = tidy(() => {
    const { logits } = model.forward(inputs);
    const l = CausalLM.lmLoss(logits!, Tensor.fromArray(targets, [targets.length], "i32"));
    backward(l);
    return l;
  });
  clipGradNorm(optimizer.params, 1.0).dispose();
  optimizer.step(1e-3);
  optimizer.zeroGrad();
  disposeInputs(inputs);
  return loss;
}
