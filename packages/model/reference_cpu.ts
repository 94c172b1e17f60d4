/**
 * A float64 CPU implementation of the Hugging Face Mistral/Llama causal LM
 * forward pass and loss, written plainly from the transformers modelling code.
 * It is the independent reference for configurations the HF fixture does not
 * cover (padding, tied embeddings, other GQA ratios, sliding windows, rope
 * theta), with gradients checked against it by finite differences.
 *
 * @module
 */

/** The architecture fields the reference needs. */
export interface ReferenceConfig {
  /** Vocabulary size (V). */
  vocabSize: number;
  /** Hidden size (d). */
  hiddenSize: number;
  /** MLP inner size. */
  intermediateSize: number;
  /** Decoder layers. */
  numLayers: number;
  /** Query heads. */
  numHeads: number;
  /** Key/value heads (grouped-query attention when fewer than `numHeads`). */
  numKvHeads: number;
  /** Dimension of one head. */
  headDim: number;
  /** RoPE base. */
  ropeTheta: number;
  /** Epsilon of RMSNorm. */
  rmsNormEps: number;
  /** `null` for none. Key j is visible from query i when i − j < window. */
  slidingWindow: number | null;
  /** Whether the LM head reuses the embedding matrix. */
  tieWordEmbeddings: boolean;
}

/** A LoRA adapter on one linear: y += scale · (x Aᵀ) Bᵀ. */
export interface ReferenceLora {
  /** [r, in] */
  a: Float64Array;
  /** [out, r] */
  b: Float64Array;
  /** Rank. */
  r: number;
  /** Multiplier of the delta (alpha / r). */
  scale: number;
}

/** Weights by Hugging Face parameter name, row-major float64. */
export type ReferenceWeights = Map<string, Float64Array>;

function weight(weights: ReferenceWeights, name: string): Float64Array {
  const w = weights.get(name);
  if (!w) throw new Error(`reference model: missing weight ${name}`);
  return w;
}

/** y[t, o] = Σ_i x[t, i] · w[o, i]  (HF Linear, weight [out, in]). */
function linear(x: Float64Array, rows: number, inDim: number, w: Float64Array, outDim: number) {
  const y = new Float64Array(rows * outDim);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[t * inDim + i]! * w[o * inDim + i]!;
      y[t * outDim + o] = s;
    }
  }
  return y;
}

function linearWithLora(
  x: Float64Array,
  rows: number,
  inDim: number,
  w: Float64Array,
  outDim: number,
  lora: ReferenceLora | undefined,
): Float64Array {
  const y = linear(x, rows, inDim, w, outDim);
  if (!lora) return y;
  const xa = linear(x, rows, inDim, lora.a, lora.r);
  const xab = linear(xa, rows, lora.r, lora.b, outDim);
  for (let i = 0; i < y.length; i++) y[i]! += lora.scale * xab[i]!;
  return y;
}

function rmsNorm(x: Float64Array, rows: number, dim: number, w: Float64Array, eps: number) {
  const y = new Float64Array(rows * dim);
  for (let t = 0; t < rows; t++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[t * dim + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[t * dim + i] = x[t * dim + i]! * inv * w[i]!;
  }
  return y;
}

/** Applies HF rotate-half RoPE in place to x laid out [T, heads, D]. */
function rope(
  x: Float64Array,
  seq: number,
  heads: number,
  d: number,
  positions: number[],
  theta: number,
) {
  const half = d / 2;
  for (let t = 0; t < seq; t++) {
    const p = positions[t]!;
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * d;
      for (let i = 0; i < half; i++) {
        const angle = p / Math.pow(theta, (2 * i) / d);
        const c = Math.cos(angle), s = Math.sin(angle);
        const x1 = x[base + i]!, x2 = x[base + i + half]!;
        x[base + i] = x1 * c - x2 * s;
        x[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/** Inputs of one reference forward. */
export interface ReferenceInputs {
  /** Token ids per batch row, all rows of equal length. */
  inputIds: number[][];
  /** HF attention_mask (1 = token, 0 = pad); all ones when absent. */
  attentionMask?: number[][];
  /** Position ids per row; HF's default 0..T−1 when absent. */
  positionIds?: number[][];
  /** LoRA adapters by the HF module path, e.g. `model.layers.0.self_attn.q_proj`. */
  lora?: Map<string, ReferenceLora>;
}

/**
 * Logits [B, T, V] as float64. Rows of pad queries that see no key get zero
 * attention output (HF's eager path makes them uniform: compare real rows only).
 */
export function referenceForward(
  cfg: ReferenceConfig,
  weights: ReferenceWeights,
  inputs: ReferenceInputs,
): Float64Array {
  const batch = inputs.inputIds.length;
  const seq = inputs.inputIds[0]!.length;
  const { hiddenSize: hd, numHeads: nh, numKvHeads: nkv, headDim: d, intermediateSize: ff } = cfg;
  const logits = new Float64Array(batch * seq * cfg.vocabSize);
  const group = nh / nkv;
  const scale = 1 / Math.sqrt(d);
  for (let b = 0; b < batch; b++) {
    const ids = inputs.inputIds[b]!;
    const mask = inputs.attentionMask?.[b] ?? ids.map(() => 1);
    const positions = inputs.positionIds?.[b] ?? ids.map((_, t) => t);
    const embed = weight(weights, "model.embed_tokens.weight");
    let h = new Float64Array(seq * hd);
    for (let t = 0; t < seq; t++) h.set(embed.subarray(ids[t]! * hd, (ids[t]! + 1) * hd), t * hd);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}`;
      const lin = (x: Float64Array, inDim: number, name: string, outDim: number) =>
        linearWithLora(
          x,
          seq,
          inDim,
          weight(weights, `${p}.${name}.weight`),
          outDim,
          inputs.lora?.get(`${p}.${name}`),
        );
      const x = rmsNorm(h, seq, hd, weight(weights, `${p}.input_layernorm.weight`), cfg.rmsNormEps);
      const q = lin(x, hd, "self_attn.q_proj", nh * d);
      const k = lin(x, hd, "self_attn.k_proj", nkv * d);
      const v = lin(x, hd, "self_attn.v_proj", nkv * d);
      rope(q, seq, nh, d, positions, cfg.ropeTheta);
      rope(k, seq, nkv, d, positions, cfg.ropeTheta);
      const attn = new Float64Array(seq * nh * d);
      const scores = new Float64Array(seq);
      for (let head = 0; head < nh; head++) {
        const kvHead = Math.floor(head / group);
        for (let i = 0; i < seq; i++) {
          let max = -Infinity;
          for (let j = 0; j < seq; j++) {
            const visible = j <= i && mask[j] === 1 &&
              (cfg.slidingWindow === null || i - j < cfg.slidingWindow);
            if (!visible) {
              scores[j] = -Infinity;
              continue;
            }
            let s = 0;
            for (let e = 0; e < d; e++) {
              s += q[(i * nh + head) * d + e]! * k[(j * nkv + kvHead) * d + e]!;
            }
            scores[j] = s * scale;
            max = Math.max(max, scores[j]!);
          }
          if (max === -Infinity) continue; // no visible key: output stays 0
          let sum = 0;
          for (let j = 0; j < seq; j++) sum += scores[j] = Math.exp(scores[j]! - max);
          for (let j = 0; j < seq; j++) {
            const pj = scores[j]! / sum;
            if (pj === 0) continue;
            for (let e = 0; e < d; e++) {
              attn[(i * nh + head) * d + e]! += pj * v[(j * nkv + kvHead) * d + e]!;
            }
          }
        }
      }
      const o = lin(attn, nh * d, "self_attn.o_proj", hd);
      for (let i = 0; i < h.length; i++) h[i]! += o[i]!;
      const x2 = rmsNorm(
        h,
        seq,
        hd,
        weight(weights, `${p}.post_attention_layernorm.weight`),
        cfg.rmsNormEps,
      );
      const gate = lin(x2, hd, "mlp.gate_proj", ff);
      const up = lin(x2, hd, "mlp.up_proj", ff);
      for (let i = 0; i < gate.length; i++) gate[i] = silu(gate[i]!) * up[i]!;
      const down = lin(gate, ff, "mlp.down_proj", hd);
      const next = new Float64Array(h.length);
      for (let i = 0; i < h.length; i++) next[i] = h[i]! + down[i]!;
      h = next;
    }
    const normed = rmsNorm(h, seq, hd, weight(weights, "model.norm.weight"), cfg.rmsNormEps);
    const head = cfg.tieWordEmbeddings ? embed : weight(weights, "lm_head.weight");
    logits.set(linear(normed, seq, hd, head, cfg.vocabSize), b * seq * cfg.vocabSize);
  }
  return logits;
}

/**
 * HF causal-LM loss: logits at t predict labels at t+1; mean over labels that
 * are not −100.
 */
export function referenceLoss(logits: Float64Array, labels: number[][], vocab: number): number {
  let total = 0, count = 0;
  const seq = labels[0]!.length;
  labels.forEach((row, b) => {
    for (let t = 0; t + 1 < seq; t++) {
      const target = row[t + 1]!;
      if (target === -100) continue;
      const off = (b * seq + t) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits[off + v]!);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[off + v]! - max);
      total += Math.log(sum) + max - logits[off + target]!;
      count++;
    }
  });
  return total / count;
}

/** Random float64 weights for a config, HF parameter names (seeded). */
export function randomReferenceWeights(
  cfg: ReferenceConfig,
  seed: number,
  scale = 0.08,
): ReferenceWeights {
  let state = seed >>> 0 || 1;
  const rand = () => {
    // xorshift32: enough for test weights, independent of the engine's PRNG.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296 - 0.5;
  };
  const make = (n: number, center = 0) =>
    Float64Array.from({ length: n }, () => center + 2 * scale * rand());
  const { hiddenSize: hd, numHeads: nh, numKvHeads: nkv, headDim: d, intermediateSize: ff } = cfg;
  const w: ReferenceWeights = new Map();
  w.set("model.embed_tokens.weight", make(cfg.vocabSize * hd, 0));
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    w.set(`${p}.input_layernorm.weight`, make(hd, 1));
    w.set(`${p}.post_attention_layernorm.weight`, make(hd, 1));
    w.set(`${p}.self_attn.q_proj.weight`, make(nh * d * hd));
    w.set(`${p}.self_attn.k_proj.weight`, make(nkv * d * hd));
    w.set(`${p}.self_attn.v_proj.weight`, make(nkv * d * hd));
    w.set(`${p}.self_attn.o_proj.weight`, make(hd * nh * d));
    w.set(`${p}.mlp.gate_proj.weight`, make(ff * hd));
    w.set(`${p}.mlp.up_proj.weight`, make(ff * hd));
    w.set(`${p}.mlp.down_proj.weight`, make(hd * ff));
  }
  w.set("model.norm.weight", make(hd, 1));
  if (!cfg.tieWordEmbeddings) w.set("lm_head.weight", make(cfg.vocabSize * hd));
  return w;
}
