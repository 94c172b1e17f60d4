/**
 * Text generation with a KV cache: the prompt runs once through the fused
 * attention (prefill), keeping every layer's keys and values; each new token
 * then attends to the cache with two small matmuls. Greedy or sampled
 * (temperature, top-k, top-p) decoding, seeded.
 *
 * @module
 */

import {
  concat,
  matmul,
  noGrad,
  permute,
  reshape,
  scale,
  slice,
  softmax,
  Tensor,
  tidy,
} from "@irforge/tensor";
import type { CausalLM, ResidualStream } from "./causal_lm.ts";
import { causalInputs, disposeInputs } from "./model_inputs.ts";

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Tokens to produce at most (default 64). */
  maxNewTokens?: number;
  /** 0 (default) = greedy; otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens when sampling (0 = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Seed of the sampler. */
  seed?: number;
  /** Stop after producing one of these ids (default: the config's EOS ids). */
  stopTokens?: number[];
  /** Called with each new token id. */
  onToken?: (id: number) => void;
}

/** Keys and values of one layer, `[1, Hkv, T, D]` each. */
interface CacheEntry {
  keys: Tensor;
  values: Tensor;
}

/** A deterministic sampler (splitmix32), independent of the engine's RNG. */
function sampler(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** Picks the next token from one row of logits (see {@link GenerateOptions}). */
export function pickToken(
  logits: ArrayLike<number>,
  options: GenerateOptions,
  random: () => number,
): number {
  const temperature = options.temperature ?? 0;
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature <= 0) return best;
  let order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) =>
    logits[b]! - logits[a]!
  );
  const topK = options.topK ?? 0;
  if (topK > 0) order = order.slice(0, topK);
  const max = logits[order[0]!]!;
  let probs = order.map((i) => Math.exp((logits[i]! - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  const topP = options.topP ?? 1;
  if (topP < 1) {
    let cumulative = 0, keep = 0;
    while (keep < probs.length && cumulative < topP * total) cumulative += probs[keep++]!;
    order = order.slice(0, Math.max(keep, 1));
    probs = probs.slice(0, order.length);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let r = random() * total;
  for (let i = 0; i < order.length; i++) {
    r -= probs[i]!;
    if (r <= 0) return order[i]!;
  }
  return order[order.length - 1]!;
}

/** Runs the prompt, fills the cache and returns the last position's logits. */
function prefill(model: CausalLM, prompt: number[], cache: CacheEntry[]): Tensor {
  const inputs = causalInputs([prompt], { window: model.config.slidingWindow });
  try {
    return tidy(() => {
      model.ensurePositions(inputs.maxPosition);
      let h: ResidualStream = { base: model.embed(inputs.inputIds), pending: null };
      for (let l = 0; l < model.config.numLayers; l++) {
        const out = model.layer(l, h, inputs);
        cache[l] = { keys: out.keys.keep(), values: out.values.keep() };
        h = out.h;
      }
      const last = (t: Tensor) => slice(t, 1, prompt.length - 1, prompt.length);
      return logitsOf(model, { base: last(h.base), pending: h.pending && last(h.pending) });
    });
  } finally {
    disposeInputs(inputs);
  }
}

function logitsOf(model: CausalLM, hidden: ResidualStream): Tensor {
  return model.lmHead(model.finalNorm(hidden));
}

/**
 * One token at `position` through every layer, attending to the cache
 * (which grows by one entry per layer). Returns the logits `[1, 1, V]`.
 */
function decodeStep(model: CausalLM, token: number, position: number, cache: CacheEntry[]): Tensor {
  const c = model.config;
  model.ensurePositions(position);
  const ids = Tensor.fromArray(Int32Array.of(token), [1, 1], "i32");
  const pos = Tensor.fromArray(Int32Array.of(position), [1, 1], "i32");
  try {
    return tidy(() => {
      let h: ResidualStream = { base: model.embed(ids), pending: null };
      const group = c.numHeads / c.numKvHeads;
      for (let l = 0; l < c.numLayers; l++) {
        const { q, k, v, h: summed } = model.queryKeyValue(l, h, pos);
        const entry = cache[l]!;
        const keys = concat([entry.keys, permute(k, [0, 2, 1, 3])], 2).keep();
        const values = concat([entry.values, permute(v, [0, 2, 1, 3])], 2).keep();
        entry.keys.dispose();
        entry.values.dispose();
        cache[l] = { keys, values };
        // Mistral's window: the new token sees keys at distance < window.
        const length = keys.shape[2]!;
        const start = c.slidingWindow !== null ? Math.max(0, length - c.slidingWindow) : 0;
        const visibleKeys = start > 0 ? slice(keys, 2, start, length) : keys;
        const visibleValues = start > 0 ? slice(values, 2, start, length) : values;
        // q [1, 1, Hq, D] → [1, Hkv, G, D]: the G query heads sharing one kv head.
        const grouped = reshape(q, [1, c.numKvHeads, group, c.headDim]);
        const scores = scale(
          matmul(grouped, visibleKeys, { transB: true }),
          1 / Math.sqrt(c.headDim),
        );
        const attended = matmul(softmax(scores), visibleValues); // [1, Hkv, G, D]
        h = model.finishLayer(l, summed, reshape(attended, [1, 1, c.numHeads * c.headDim]));
      }
      return logitsOf(model, h);
    });
  } finally {
    ids.dispose();
    pos.dispose();
  }
}

/**
 * Generates up to `maxNewTokens` ids after `prompt` (which should start with
 * BOS when the model expects it). Returns only the new ids.
 */
export async function generate(
  model: CausalLM,
  prompt: number[],
  options: GenerateOptions = {},
): Promise<number[]> {
  if (prompt.length === 0) {
    throw new Error("generate: the prompt is empty (start it with the BOS id)");
  }
  const maxNew = options.maxNewTokens ?? 64;
  const stop = new Set(options.stopTokens ?? model.config.eosTokenIds);
  const random = sampler(options.seed ?? 0);
  const cache: CacheEntry[] = [];
  const produced: number[] = [];
  try {
    let logits = noGrad(() => prefill(model, prompt, cache));
    for (let n = 0; n < maxNew; n++) {
      const row = await logits.toArray();
      logits.dispose();
      const next = pickToken(row, options, random);
      produced.push(next);
      options.onToken?.(next);
      const position = prompt.length + n;
      if (stop.has(next) || n + 1 === maxNew) break;
      logits = noGrad(() => decodeStep(model, next, position, cache));
    }
  } finally {
    for (const entry of cache) {
      entry.keys.dispose();
      entry.values.dispose();
    }
  }
  return produced;
}
