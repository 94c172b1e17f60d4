/**
 * The Mistral/Llama causal language model on the GPU engine: embedding,
 * decoder layers (RMSNorm, q/k/v/o with grouped-query attention, RoPE, fused
 * masked attention, SwiGLU MLP), final norm, LM head (tied or not). Every
 * RMSNorm but layer 0's input norm runs fused with the residual add before
 * it (`addRmsNorm`), forward and backward.
 *
 * Parameters keep Hugging Face names (`model.layers.0.self_attn.q_proj.weight`)
 * so checkpoints, gradients and adapters line up with transformers and peft.
 *
 * @module
 */

import {
  add,
  addRmsNorm,
  attention,
  attentionScoresForRows,
  cast,
  checkpointMany,
  crossEntropy,
  embedding,
  isReplayableState,
  linear,
  lmHeadLoss,
  permute,
  type ReplayableState,
  reshape,
  rmsNorm,
  rope,
  ropeQK,
  ropeTable,
  swiglu,
  Tensor,
  tidy,
  variable,
} from "@irforge/tensor";
import type { ModelConfig } from "./config.ts";
import { F16WeightCache } from "./f16_weights.ts";
import type { ModelInputs } from "./model_inputs.ts";

/** Names of the seven linear projections of a decoder layer. */
export const PROJECTIONS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;

/** One of {@link PROJECTIONS}. */
export type Projection = typeof PROJECTIONS[number];

/** HF module path of a projection, e.g. `model.layers.3.self_attn.q_proj`. */
export function projectionPath(layer: number, projection: Projection): string {
  const group = projection === "gate_proj" || projection === "up_proj" ||
      projection === "down_proj"
    ? "mlp"
    : "self_attn";
  return `model.layers.${layer}.${group}.${projection}`;
}

/**
 * Something that adds to a base projection's output, e.g. a LoRA adapter:
 * returns the delta for input `x` (or `null` when it has none for `path`).
 */
export interface ProjectionDelta {
  /** Delta `[..., out]` for the module at `path` given its input `x` `[..., in]`. */
  delta(path: string, x: Tensor): Tensor | null;
}

/** A base weight in a form other than a plain tensor (e.g. NF4-quantised). */
export interface QuantizedLinear {
  /**
   * y = x·Wᵀ with W dequantised on the fly; `halfGradient` rounds the
   * incoming gradient to f16 in the backward (set under autocast, like
   * `linear`'s option).
   */
  apply(x: Tensor, options?: { halfGradient?: boolean }): Tensor;
  /** Frees the weight. */
  dispose(): void;
}

/** What {@link CausalLM.forward} should return besides the final hidden state. */
export interface ForwardOptions {
  /** `"logits"` (default) applies the LM head; `"hidden"` stops after the final norm. */
  output?: "logits" | "hidden";
  /**
   * Also return layer `layer`'s scaled pre-softmax attention scores of the
   * query rows `rows` (R distinct token indices per batch row, −1 = unused)
   * against every key: `[B, Hq, R, T]`, masked entries −inf. Differentiable
   * (the BlockRank auxiliary loss).
   */
  attentionScores?: { layer: number; rows: number[][] };
  /** Skip the layers after the one whose scores were asked for (attention-based ranking). */
  stopAfterScores?: boolean;
  /**
   * Input embeddings `[B, T, hidden]` to use instead of looking up
   * `inputs.inputIds` (e.g. NEFTune adds noise to `embed(ids)` first).
   */
  inputsEmbeds?: Tensor;
}

/** What {@link CausalLM.forward} returns. */
export interface ForwardResult {
  /** `[B, T, V]` when logits were asked for. */
  logits?: Tensor;
  /** `[B, T, hidden]` after the final norm when `output: "hidden"`. */
  hidden?: Tensor;
  /** `[B, Hq, R, T]` when attention scores were asked for. */
  attentionScores?: Tensor;
}

/**
 * The decoder's residual stream between two RMSNorms: `base + pending`, the
 * add left undone so that the next norm does it in the same kernel
 * (`addRmsNorm`: the MLP residual of layer l with the input norm of layer
 * l+1, the last one with the final norm). `pending` is null when the stream
 * is already summed (the embeddings).
 */
export interface ResidualStream {
  /** The stream so far. */
  base: Tensor;
  /** The block output still to be added to it, or null. */
  pending: Tensor | null;
}

/** A summed tensor as a {@link ResidualStream}, or the stream as is. */
function asStream(h: Tensor | ResidualStream): ResidualStream {
  return h instanceof Tensor ? { base: h, pending: null } : h;
}

/** Keys and values of every layer for incremental decoding: `[B, Hkv, T, D]` each. */
export interface LayerCache {
  /** Keys after RoPE, `[B, Hkv, T, D]`. */
  keys: Tensor;
  /** Values, `[B, Hkv, T, D]`. */
  values: Tensor;
}

/**
 * A Mistral/Llama causal LM whose parameters live on the GPU.
 *
 * Ownership: the model owns its parameter tensors; `dispose()` frees them.
 */
export class CausalLM {
  /** Architecture. */
  readonly config: ModelConfig;
  /** Parameters by HF name (the LM head is absent when tied). */
  readonly params: Map<string, Tensor>;
  /** Quantised base projections by HF module path (QLoRA), used instead of `params`. */
  readonly quantized = new Map<string, QuantizedLinear>();
  /** Adds adapter deltas to projections (LoRA); `null` for none. */
  adapter: ProjectionDelta | null = null;
  /**
   * Activation checkpointing: keep only each decoder layer's input on the
   * tape and recompute the layer in backward (one extra forward per layer).
   * The input is the {@link ResidualStream} (two `[B, T, hidden]` tensors
   * after layer 0, so that the recomputation fuses the residual add with the
   * norm as the forward does). The layer whose attention scores are asked
   * for is never checkpointed.
   */
  gradientCheckpointing = false;
  /**
   * The f16 copies of the f32 weights under {@link CausalLM.autocast}: cast
   * once per weight change (once per optimizer step for trainable weights,
   * once per run for frozen ones), not at every use.
   */
  readonly f16Weights: F16WeightCache = new F16WeightCache();
  /**
   * Whether {@link CausalLM.autocast} reuses {@link CausalLM.f16Weights}
   * (default). `false` casts every weight at every use, as before the cache
   * existed (same values, one cast per weight per forward), and frees the
   * cached copies at the next use.
   */
  cacheF16Weights = true;
  #autocast: "f16" | null = null;
  #ropeTable: Tensor;

  /**
   * Wraps parameters (HF names) already on the GPU; takes ownership. A
   * projection may instead be given in `quantized` by module path (QLoRA
   * loads a checkpoint straight into NF4 this way).
   */
  constructor(
    config: ModelConfig,
    params: Map<string, Tensor>,
    quantized: Map<string, QuantizedLinear> = new Map(),
  ) {
    this.config = config;
    this.params = params;
    for (const [path, q] of quantized) this.quantized.set(path, q);
    const positions = Math.max(config.maxPositionEmbeddings, 1);
    this.#ropeTable = ropeTable(positions, config.headDim, config.ropeTheta).keep();
    for (const name of expectedParameterNames(config)) {
      if (params.has(name) || this.quantized.has(name.replace(/\.weight$/, ""))) continue;
      throw new Error(`model: parameter ${name} is missing`);
    }
  }

  /**
   * Mixed precision (`training.fp16`): `"f16"` casts both operands of every
   * projection and the LM head, and attention's q, k, v, to f16 (f32
   * accumulation, softmax statistics and output), as autocast does; the
   * projections' backward products take the incoming gradient as f16 too
   * (f16×f16: the matrix units where Dawn offers them; the loss scaler keeps
   * small gradients representable); weights
   * stay f32 masters, their f16 copies cached in {@link CausalLM.f16Weights}.
   * Norms and the loss stay f32. `null` (default): operands as stored;
   * setting it frees the cache.
   */
  get autocast(): "f16" | null {
    return this.#autocast;
  }

  set autocast(mode: "f16" | null) {
    this.#autocast = mode;
    if (mode === null) this.f16Weights.clear();
  }

  /** A weight as an f16 operand: the cached copy unless caching is off. */
  #halfWeight(w: Tensor): Tensor {
    if (w.dtype === "f16") return w;
    if (this.cacheF16Weights) return this.f16Weights.half(w);
    if (this.f16Weights.size > 0) this.f16Weights.clear();
    return cast(w, "f16");
  }

  /** The HF name → tensor map of trainable (non-quantised) parameters. */
  parameters(): Map<string, Tensor> {
    return this.params;
  }

  /** Makes every parameter trainable (full fine-tuning) or frozen. */
  setTrainable(trainable: boolean): void {
    for (const p of this.params.values()) {
      if (trainable) variable(p);
      else p.requiresGrad = false;
    }
  }

  /** The RoPE cos/sin table used by every layer. */
  get ropeTable(): Tensor {
    return this.#ropeTable;
  }

  /**
   * Makes the RoPE table cover position `maxPosition`. HF computes cos/sin
   * for any position id, so the table grows (doubling) rather than clamp.
   */
  ensurePositions(maxPosition: number): void {
    const rows = this.#ropeTable.shape[0]!;
    if (maxPosition < rows) return;
    const grown = Math.max(maxPosition + 1, rows * 2);
    this.#ropeTable.dispose();
    this.#ropeTable = ropeTable(grown, this.config.headDim, this.config.ropeTheta).keep();
  }

  /** Throws when a sliding window that matters is missing from (or differs in) the mask. */
  #checkWindow(inputs: ModelInputs): void {
    const window = this.config.slidingWindow;
    const given = inputs.mask.meta.window;
    const matters = (window !== null && window < inputs.length) || given > 0;
    if (matters && given !== (window ?? 0)) {
      throw new Error(
        `model: sliding_window is ${window ?? "none"} but the inputs were built with window ${
          given || "none"
        }; ` +
          "pass the config's slidingWindow when building inputs",
      );
    }
  }

  #weight(name: string): Tensor {
    const w = this.params.get(name);
    if (!w) throw new Error(`model: parameter ${name} is missing`);
    return w;
  }

  /** y = x·Wᵀ for projection `path` (base weight, quantised or not, plus adapter delta). */
  project(path: string, x: Tensor): Tensor {
    const q = this.quantized.get(path);
    const base = q
      ? q.apply(x, { halfGradient: this.autocast === "f16" })
      : this.#linear(x, this.#weight(`${path}.weight`));
    const delta = this.adapter?.delta(path, x) ?? null;
    return delta ? add(base, delta) : base;
  }

  /** x·Wᵀ, with f16 operands under {@link CausalLM.autocast}. */
  #linear(x: Tensor, w: Tensor): Tensor {
    if (this.autocast !== "f16") return linear(x, w);
    return linear(x.dtype === "f16" ? x : cast(x, "f16"), this.#halfWeight(w), undefined, "none", {
      halfGradient: true,
    });
  }

  /** Token embeddings `[B, T, hidden]` of i32 ids `[B, T]`. */
  embed(inputIds: Tensor): Tensor {
    const table = this.#weight("model.embed_tokens.weight");
    if (table.dtype !== "f16") return embedding(table, inputIds);
    // An f16 table (frozen base) still feeds an f32 residual stream.
    return tidy(() => cast(embedding(table, inputIds), "f32"));
  }

  /**
   * The summed stream and its RMSNorm with weight `name`: one fused kernel
   * when an add is pending on the f32 stream.
   */
  #addNorm(stream: ResidualStream, name: string): { h: Tensor; x: Tensor } {
    const { base, pending } = stream;
    const w = this.#weight(name), eps = this.config.rmsNormEps;
    if (!pending) return { h: base, x: rmsNorm(base, w, eps) };
    if (base.dtype === "f32" && pending.dtype === "f32") {
      const [h, x] = addRmsNorm(base, pending, w, eps);
      return { h, x };
    }
    const h = add(base, pending);
    return { h, x: rmsNorm(h, w, eps) };
  }

  /**
   * The final norm of the residual stream (fused with the last layer's MLP
   * residual when that add is pending).
   */
  finalNorm(h: Tensor | ResidualStream): Tensor {
    return this.#addNorm(asStream(h), "model.norm.weight").x;
  }

  /**
   * The attention half's inputs of layer `index`: RoPE'd queries `[B, T, Hq, D]`
   * and keys, and values `[B, T, Hkv, D]`, from the residual stream `h`
   * (whose pending add fuses with the input norm); `h` is the summed stream,
   * what {@link CausalLM.finishLayer} adds attention to.
   */
  queryKeyValue(
    index: number,
    stream: Tensor | ResidualStream,
    positionIds: Tensor,
  ): { q: Tensor; k: Tensor; v: Tensor; h: Tensor } {
    const c = this.config;
    const p = `model.layers.${index}`;
    const { h, x } = this.#addNorm(asStream(stream), `${p}.input_layernorm.weight`);
    const [B, T] = h.shape as [number, number, number];
    const heads = (proj: string, n: number) =>
      reshape(this.project(`${p}.self_attn.${proj}`, x), [B, T, n, c.headDim]);
    const qh = heads("q_proj", c.numHeads), kh = heads("k_proj", c.numKvHeads);
    // Queries and keys rotate in one dispatch when they share a dtype.
    const [q, k] = qh.dtype === kh.dtype
      ? ropeQK(qh, kh, positionIds, this.#ropeTable)
      : [rope(qh, positionIds, this.#ropeTable), rope(kh, positionIds, this.#ropeTable)];
    return { q, k, v: heads("v_proj", c.numKvHeads), h };
  }

  /**
   * The rest of layer `index` after attention: output projection and
   * residual (fused with the post-attention norm), then the SwiGLU MLP,
   * whose residual add is left pending for the next norm. `h` is the summed
   * stream from {@link CausalLM.queryKeyValue}; `attended` is `[B, T, Hq·D]`.
   */
  finishLayer(index: number, h: Tensor, attended: Tensor): ResidualStream {
    const p = `model.layers.${index}`;
    const o = this.project(`${p}.self_attn.o_proj`, attended);
    const { h: h1, x: x2 } = this.#addNorm(
      { base: h, pending: o },
      `${p}.post_attention_layernorm.weight`,
    );
    const gated = swiglu(
      this.project(`${p}.mlp.gate_proj`, x2),
      this.project(`${p}.mlp.up_proj`, x2),
    );
    return { base: h1, pending: this.project(`${p}.mlp.down_proj`, gated) };
  }

  /**
   * One decoder layer on the residual stream `[B, T, hidden]` with the fused
   * masked attention; the stream it returns has the MLP's residual add
   * pending. Also returns the layer's keys and values `[B, Hkv, T, D]` (for
   * a KV cache) and, when `scoreRows` is given, the pre-softmax scores of
   * those rows.
   */
  layer(
    index: number,
    stream: Tensor | ResidualStream,
    inputs: ModelInputs,
    scoreRows?: number[][],
  ): { h: ResidualStream; scores?: Tensor; keys: Tensor; values: Tensor } {
    const c = this.config;
    const { q, k, v, h } = this.queryKeyValue(index, stream, inputs.positionIds);
    const [B, T] = h.shape as [number, number, number];
    // The fused kernel wants heads before time: [B, H, T, D].
    const qh = permute(q, [0, 2, 1, 3]);
    const kh = permute(k, [0, 2, 1, 3]);
    const vh = permute(v, [0, 2, 1, 3]);
    // Under autocast attention reads f16 operands; its output stays f32.
    const half = (t: Tensor) => this.autocast === "f16" && t.dtype !== "f16" ? cast(t, "f16") : t;
    const [qa, ka] = [half(qh), half(kh)];
    const a = attention(qa, ka, half(vh), inputs.mask);
    const scores = scoreRows ? attentionScoresForRows(qa, ka, inputs.mask, scoreRows) : undefined;
    const merged = reshape(permute(a, [0, 2, 1, 3]), [B, T, c.numHeads * c.headDim]);
    return { h: this.finishLayer(index, h, merged), scores, keys: kh, values: vh };
  }

  /**
   * Runs the model. Temporaries are freed; the returned tensors belong to the
   * caller. Gradients are recorded when parameters require them.
   */
  forward(inputs: ModelInputs, options: ForwardOptions = {}): ForwardResult {
    this.#checkWindow(inputs);
    this.ensurePositions(inputs.maxPosition);
    return tidy(() => {
      let h: ResidualStream = {
        base: options.inputsEmbeds ?? this.embed(inputs.inputIds),
        pending: null,
      };
      let attentionScores: Tensor | undefined;
      const wanted = options.attentionScores;
      if (wanted && (wanted.layer < 0 || wanted.layer >= this.config.numLayers)) {
        throw new Error(
          `model: attention scores asked for layer ${wanted.layer}, the model has ${this.config.numLayers}`,
        );
      }
      // An adapter with host state (LoRA dropout counters) is rewound for the recomputation.
      const state: ReplayableState[] = isReplayableState(this.adapter) ? [this.adapter] : [];
      for (let l = 0; l < this.config.numLayers; l++) {
        if (this.gradientCheckpointing && wanted?.layer !== l) {
          // Both halves of the stream are the checkpoint's inputs and outputs, so the
          // recomputation fuses the pending add with the norm as the forward did.
          const saved = h.pending ? [h.base, h.pending] : [h.base];
          const [base, pending] = checkpointMany(
            ([b, d]) => {
              const out = this.layer(l, { base: b!, pending: d ?? null }, inputs).h;
              return [out.base, out.pending!];
            },
            saved,
            { state },
          );
          h = { base: base!, pending: pending! };
          continue;
        }
        const out = this.layer(l, h, inputs, wanted?.layer === l ? wanted.rows : undefined);
        h = out.h;
        if (out.scores) {
          attentionScores = out.scores;
          if (options.stopAfterScores) return { attentionScores };
        }
      }
      const normed = this.finalNorm(h);
      if (options.output === "hidden") return { hidden: normed, attentionScores };
      return { logits: this.lmHead(normed), attentionScores };
    });
  }

  /** Logits `[..., V]` of final hidden states `[..., hidden]`. */
  lmHead(hidden: Tensor): Tensor {
    const head = this.config.tieWordEmbeddings
      ? this.#weight("model.embed_tokens.weight")
      : this.#weight("lm_head.weight");
    return this.#linear(hidden, head);
  }

  /**
   * Mean token cross-entropy through the LM head straight from the final
   * hidden states `[..., hidden]` (`forward(inputs, { output: "hidden" })`)
   * against already-shifted i32 targets: the same value and gradients as
   * `lmLoss(lmHead(hidden), targets)` without materialising the logits
   * (chunked LM head + cross-entropy, see `lmHeadLoss`).
   */
  causalLmLoss(hidden: Tensor, shiftedTargets: Tensor): Tensor {
    const H = hidden.shape[hidden.rank - 1]!;
    const head = this.config.tieWordEmbeddings
      ? this.#weight("model.embed_tokens.weight")
      : this.#weight("lm_head.weight");
    const rows = reshape(hidden, [hidden.size / H, H]);
    if (this.autocast !== "f16") return lmHeadLoss(rows, head, shiftedTargets);
    const rows16 = rows.dtype === "f16" ? rows : cast(rows, "f16");
    return lmHeadLoss(rows16, this.#halfWeight(head), shiftedTargets);
  }

  /**
   * HF causal-LM loss of `logits` `[B, T, V]` against `labels` `[B, T]`
   * (−100 = ignored): position t predicts label t+1; mean over counted tokens.
   * The shift happens on the labels (host side), so logits are not copied.
   */
  static shiftedTargets(labels: Int32Array, batch: number, length: number): Int32Array {
    const targets = new Int32Array(batch * length).fill(-100);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t + 1 < length; t++) targets[b * length + t] = labels[b * length + t + 1]!;
    }
    return targets;
  }

  /** Mean token cross-entropy of `logits` `[B, T, V]` against already-shifted i32 targets `[B·T]`. */
  static lmLoss(logits: Tensor, shiftedTargets: Tensor): Tensor {
    const V = logits.shape[logits.rank - 1]!;
    return crossEntropy(reshape(logits, [logits.size / V, V]), shiftedTargets);
  }

  /** Frees every parameter and the RoPE table. */
  dispose(): void {
    for (const p of this.params.values()) {
      p.grad?.dispose();
      p.dispose();
    }
    for (const q of this.quantized.values()) q.dispose();
    this.f16Weights.clear();
    this.#ropeTable.dispose();
  }
}

/** The HF parameter names a model of `config` has, in checkpoint order. */
export function expectedParameterNames(config: ModelConfig): string[] {
  const names = ["model.embed_tokens.weight"];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    names.push(`${p}.input_layernorm.weight`, `${p}.post_attention_layernorm.weight`);
    for (const proj of PROJECTIONS) names.push(`${projectionPath(l, proj)}.weight`);
  }
  names.push("model.norm.weight");
  if (!config.tieWordEmbeddings) names.push("lm_head.weight");
  return names;
}

/** The `[rows, cols]` shape of each parameter of `config`. */
export function parameterShape(config: ModelConfig, name: string): number[] {
  const { hiddenSize: h, numHeads, numKvHeads, headDim: d, intermediateSize: f, vocabSize: v } =
    config;
  if (name === "model.embed_tokens.weight" || name === "lm_head.weight") return [v, h];
  if (name.endsWith("layernorm.weight") || name === "model.norm.weight") return [h];
  if (name.endsWith("q_proj.weight")) return [numHeads * d, h];
  if (name.endsWith("k_proj.weight") || name.endsWith("v_proj.weight")) return [numKvHeads * d, h];
  if (name.endsWith("o_proj.weight")) return [h, numHeads * d];
  if (name.endsWith("gate_proj.weight") || name.endsWith("up_proj.weight")) return [f, h];
  if (name.endsWith("down_proj.weight")) return [h, f];
  throw new Error(`model: unknown parameter ${name}`);
}
