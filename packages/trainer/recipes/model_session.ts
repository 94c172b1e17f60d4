/**
 * What every recipe does with its model between the training loop's calls:
 * keep a micro-batch's inputs alive until backward and free them after,
 * seed adapter dropout per micro-batch, switch the adapter to evaluation
 * mode and back, save and load checkpoint weights, and free everything at
 * the end. A recipe file keeps only its data, prompt layout, micro-batch
 * loss and evaluation.
 *
 * @example Train a recipe's micro-batch with a session
 * ```ts ignore
 * const task = await withModelSession(config, (session) => ({
 *   async microBatch(epoch, index, rng) {
 *     session.startMicroBatch(rng);
 *     const picked = microBatchIndices(rows.length, seed, epoch, index, batchSize);
 *     const inputs = session.keep(uploadInputs(tokens, window));
 *     // … forward, loss …
 *   },
 *   evaluate: () => session.inEvalMode(evaluateNow),
 *   saveWeights: (dir) => session.saveWeights(dir),
 *   loadWeights: (dir) => session.loadWeights(dir),
 *   dispose: () => session.dispose(),
 * }));
 * ```
 *
 * @module
 */

import type { Tensor } from "@irforge/tensor";
import { type CausalLM, disposeInputs, type ModelInputs } from "@irforge/model";
import { IGNORE_INDEX, type TextTokenizer } from "@irforge/data";
import type { Config } from "../config/schema.ts";
import { epochPermutation } from "../loop.ts";
import type { Rng } from "../rng.ts";
import {
  disposeLoaded,
  loadCheckpointWeights,
  type LoadedModel,
  loadModel,
  loadWeights,
  saveCheckpointWeights,
  saveWeights,
  seedAdapterDropout,
  setAdapterTraining,
} from "./model_setup.ts";

/** A loaded model and what a recipe does with it around each step. */
export class ModelSession {
  /** The model, tokenizer, trainable parameters and LoRA adapter (if any). */
  readonly loaded: LoadedModel;
  /**
   * Inputs of the current micro-batch. They live until the next micro-batch
   * (or evaluation): backward runs after `microBatch` returns and re-reads
   * them when layers are checkpointed.
   */
  readonly live: ModelInputs[] = [];

  /** A session over `loaded`; {@link ModelSession.dispose} frees it. */
  constructor(loaded: LoadedModel) {
    this.loaded = loaded;
  }

  /** The model. */
  get model(): CausalLM {
    return this.loaded.model;
  }

  /** The tokenizer. */
  get tokenizer(): TextTokenizer {
    return this.loaded.tokenizer;
  }

  /** Trainable parameters: the adapter's with LoRA, else the model's. */
  get trainable(): Map<string, Tensor> {
    return this.loaded.trainable;
  }

  /** Keeps `inputs` alive until the next {@link ModelSession.release}; returns them. */
  keep(inputs: ModelInputs): ModelInputs {
    this.live.push(inputs);
    return inputs;
  }

  /** Frees the inputs kept so far. */
  release(): void {
    for (const inputs of this.live.splice(0)) disposeInputs(inputs);
  }

  /** Starts a micro-batch: the last one's inputs go, adapter dropout is seeded from `rng`. */
  startMicroBatch(rng: Rng): void {
    this.release();
    seedAdapterDropout(this.loaded, rng);
  }

  /** Runs `fn` in evaluation mode (no adapter dropout), then back in training mode. */
  async inEvalMode<T>(fn: () => Promise<T>): Promise<T> {
    this.release();
    setAdapterTraining(this.loaded, false);
    try {
      return await fn();
    } finally {
      setAdapterTraining(this.loaded, true);
    }
  }

  /**
   * Writes checkpoint weights into `dir`: the adapter in peft's format with
   * LoRA, else the full model as `model.safetensors`. `extra` parameters (a
   * scoring head, a projection) go into `model.safetensors` as well: beside
   * the adapter, or after the model's own.
   */
  async saveWeights(dir: string, extra?: Map<string, Tensor> | null): Promise<void> {
    if (!extra) return await saveCheckpointWeights(dir, this.loaded);
    if (this.loaded.adapter) await saveCheckpointWeights(dir, this.loaded);
    await saveWeights(dir, this.#modelFile(extra));
  }

  /** Loads what {@link ModelSession.saveWeights} wrote, in place (the optimiser keeps its references). */
  async loadWeights(dir: string, extra?: Map<string, Tensor> | null): Promise<void> {
    if (!extra) return await loadCheckpointWeights(dir, this.loaded);
    if (this.loaded.adapter) await loadCheckpointWeights(dir, this.loaded);
    await loadWeights(dir, this.#modelFile(extra));
  }

  /** Frees the kept inputs, the adapter and the model. */
  dispose(): void {
    this.release();
    disposeLoaded(this.loaded);
  }

  /** What `model.safetensors` holds with `extra`: `extra` beside an adapter, else model + `extra`. */
  #modelFile(extra: Map<string, Tensor>): Map<string, Tensor> {
    return this.loaded.adapter ? extra : new Map([...this.loaded.trainable, ...extra]);
  }
}

/**
 * Loads the model of `config` and builds on it with `build`; when `build`
 * throws, the model is freed before the error goes on. Load the model after
 * reading data and creating the loss, so that their errors leave nothing on
 * the GPU.
 */
export async function withModelSession<T>(
  config: Config,
  build: (session: ModelSession) => T | Promise<T>,
): Promise<T> {
  const session = new ModelSession(await loadModel(config));
  try {
    return await build(session);
  } catch (error) {
    session.dispose();
    throw error;
  }
}

/**
 * Indices of the items in micro-batch `index` of `epoch`: the epoch's seeded
 * permutation of `count` items (`epochPermutation`), `batchSize` at a time.
 */
export function microBatchIndices(
  count: number,
  seed: number,
  epoch: number,
  index: number,
  batchSize: number,
): number[] {
  return epochPermutation(count, seed, epoch).slice(index * batchSize, (index + 1) * batchSize);
}

/** Real tokens of a batch: the sum of its attention mask. */
export function countTokens(attentionMask: ArrayLike<number>): number {
  let tokens = 0;
  for (let i = 0; i < attentionMask.length; i++) tokens += attentionMask[i]!;
  return tokens;
}

/** Number of tokens that carry a loss after the causal shift (target ≠ -100). */
export function countTargets(targets: Int32Array): number {
  let n = 0;
  for (const t of targets) if (t !== IGNORE_INDEX) n++;
  return n;
}
